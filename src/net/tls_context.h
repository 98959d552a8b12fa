#pragma once
// Asio/OpenSSL server contexts from TlsServerOptions. Include only in the .cpp files
// that serve TLS (listeners.cpp, http_server.cpp): it brings in the OpenSSL headers.
#include <boost/asio/ssl.hpp>
#include <boost/system/error_code.hpp>

#include <string>

#include "net/tls.h"

namespace bf {

// A server context: certificate chain and key, client verification against ca_file
// per client_auth, no protocol below min_version. Throws std::runtime_error naming
// `what` (the listener) and the file when something cannot be loaded.
boost::asio::ssl::context make_tls_server_context(const TlsServerOptions& options, const std::string& what);

// Why a server-side handshake failed, as a metrics label: client_certificate (the
// client's certificate was missing or did not verify), protocol_version (below
// min_version), or handshake (anything else: not TLS, no shared cipher, reset, …).
const char* tls_handshake_failure(const boost::system::error_code& ec);

}  // namespace bf
