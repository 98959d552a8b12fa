#pragma once
// TLS server settings shared by the TCP listener (syslog over TLS, RFC 5425; raw tcp)
// and the HTTP server. Plain data: the OpenSSL/Asio side is in net/tls_context.h,
// which only the .cpp files that serve TLS include.
#include <string>

namespace bf {

struct TlsServerOptions {
  std::string cert_file;  // PEM certificate chain; set (with key_file): serve TLS
  std::string key_file;   // PEM private key
  // PEM CA bundle that client certificates must chain to (client_auth optional/required).
  std::string ca_file;
  // none: no client certificate asked for; optional: asked for, verified when sent;
  // required: a connection without a valid one is refused (and counted).
  std::string client_auth = "none";
  std::string min_version = "1.2";  // "1.2" or "1.3"
  bool enabled() const { return !cert_file.empty(); }
};

}  // namespace bf
