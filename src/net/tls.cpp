#include "net/tls_context.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <stdexcept>

namespace bf {

namespace ssl = boost::asio::ssl;

ssl::context make_tls_server_context(const TlsServerOptions& o, const std::string& what) {
  ssl::context ctx(ssl::context::tls_server);
  ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                  ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::single_dh_use);
  const int min = o.min_version == "1.3" ? TLS1_3_VERSION : TLS1_2_VERSION;
  if (o.min_version != "1.2" && o.min_version != "1.3")
    throw std::runtime_error(what + ": tls min_version must be 1.2 or 1.3, got '" + o.min_version + "'");
  SSL_CTX_set_min_proto_version(ctx.native_handle(), min);
  boost::system::error_code ec;
  ctx.use_certificate_chain_file(o.cert_file, ec);
  if (ec) throw std::runtime_error(what + ": cannot load TLS certificate '" + o.cert_file + "': " + ec.message());
  ctx.use_private_key_file(o.key_file, ssl::context::pem, ec);
  if (ec) throw std::runtime_error(what + ": cannot load TLS key '" + o.key_file + "': " + ec.message());
  if (o.client_auth != "none") {
    if (o.ca_file.empty()) throw std::runtime_error(what + ": tls client_auth " + o.client_auth + " needs ca_file");
    ctx.load_verify_file(o.ca_file, ec);
    if (ec) throw std::runtime_error(what + ": cannot load TLS CA file '" + o.ca_file + "': " + ec.message());
    // The CA names sent in the CertificateRequest, so clients pick the right certificate.
    if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(o.ca_file.c_str()))
      SSL_CTX_set_client_CA_list(ctx.native_handle(), names);
    ssl::verify_mode mode = ssl::verify_peer;
    if (o.client_auth == "required") mode |= ssl::verify_fail_if_no_peer_cert;
    else if (o.client_auth != "optional")
      throw std::runtime_error(what + ": tls client_auth must be none, optional or required, got '" + o.client_auth +
                               "'");
    ctx.set_verify_mode(mode);
  }
  return ctx;
}

const char* tls_handshake_failure(const boost::system::error_code& ec) {
  if (ec.category() != boost::asio::error::get_ssl_category()) return "handshake";
  switch (ERR_GET_REASON(static_cast<unsigned long>(ec.value()))) {
    case SSL_R_CERTIFICATE_VERIFY_FAILED:
    case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
      return "client_certificate";
    case SSL_R_UNSUPPORTED_PROTOCOL:
    case SSL_R_VERSION_TOO_LOW:
    case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
      return "protocol_version";
    default:
      return "handshake";
  }
}

}  // namespace bf
