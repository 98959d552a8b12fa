#pragma once
// Plain request/response types shared by the HTTP server and client. No Beast here:
// Beast stays inside net/http_server.cpp.
#include <cstdint>
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

struct HttpResponse {
  int status = 200;
  Headers headers;
  std::string body;

  static HttpResponse text(int status, std::string body);
  static HttpResponse json(int status, std::string body);
  // {"error": message} with the given status.
  static HttpResponse error(int status, std::string_view message);
};

}  // namespace bf
