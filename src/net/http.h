#pragma once
// Plain request/response types shared by the HTTP server and client. No Beast here:
// Beast stays inside net/http_server.cpp.
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bf {

// Header names compared case-insensitively.
struct CaseInsensitiveLess {
  using is_transparent = void;  // lets Headers::find take a string_view
  bool operator()(std::string_view a, std::string_view b) const;
};
using Headers = std::map<std::string, std::string, CaseInsensitiveLess>;

struct HttpRequest {
  std::string method;                 // "GET", "POST", ...
  std::string target;                 // raw target: path + query
  std::string path;                   // percent-decoded path
  std::map<std::string, std::string> query;
  std::map<std::string, std::string> params;  // filled by the router from {name} segments
  Headers headers;
  std::string body;
  std::string peer;                   // "ip:port"

  std::optional<std::string> header(std::string_view name) const;
};

struct HttpResponse;

// A response body written while it is produced (HttpResponse::stream). The server
// keeps what is written until it reaches a threshold (64 KiB): a producer that
// finishes before is answered as a whole (Content-Length) and may still replace the
// response (fail()); after that the status and headers are sent and the body goes
// out with chunked transfer, trailers at the end. Over TLS and to HTTP/1.0 clients
// the whole body is kept and sent at the end. Used on the handler's thread only.
class HttpStream {
 public:
  virtual ~HttpStream() = default;
  // The response's status and headers; changes count until the body is committed.
  virtual HttpResponse& response() = 0;
  // Appends to the body. False once the client has gone: stop producing.
  virtual bool write(std::string_view data) = 0;
  // True when the status and headers have been sent (nothing above can change).
  virtual bool committed() const = 0;
  // Not committed yet: replaces the whole response (what was written is dropped)
  // and returns true. Committed: false (the producer reports the error in-band).
  virtual bool fail(HttpResponse replacement) = 0;
  // A trailer of a chunked body (declared in a `Trailer` header of the response);
  // a response sent as a whole gets it as a header instead.
  virtual void trailer(const std::string& name, const std::string& value) = 0;
  // Ends a committed body without its last chunk and closes the connection, so the
  // client sees the transfer as incomplete. Nothing to do when not committed.
  virtual void abort() = 0;
  // True when the client has closed its end (checked without blocking; thread-safe:
  // may be polled from another thread while the producer blocks).
  virtual bool client_gone() = 0;
};

struct HttpResponse {
  int status = 200;
  Headers headers;
  std::string body;
  // Set: the server calls it instead of sending `body`, after the handler returned
  // (docs: HttpStream above). An exception before the commit is answered 500; after
  // it, the body is aborted.
  std::function<void(HttpStream&)> stream = {};

  static HttpResponse text(int status, std::string body);
  static HttpResponse json(int status, std::string body);
  // {"error": message} with the given status.
  static HttpResponse error(int status, std::string_view message);
};

}  // namespace bf
