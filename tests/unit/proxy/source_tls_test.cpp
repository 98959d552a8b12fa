// TLS on the syslog_tcp, tcp and http sources (RFC 5425): certificates made by the
// openssl CLI for each test run; real TLS clients (Asio/OpenSSL) on loopback.
#include <gtest/gtest.h>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <openssl/ssl.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "common/metrics.h"
#include "fixtures/net_helpers.h"
#include "unit/proxy/capturing_sink.h"
#include "unit/proxy/test_util.h"

namespace bf {
namespace {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
namespace fs = std::filesystem;

// A CA, a server certificate for 127.0.0.1 and a client certificate signed by it,
// and a second CA with a client certificate of its own (the wrong CA).
class TlsSource : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = fs::temp_directory_path() / ("bf-tls-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    const std::string d = dir_.string();
    const std::string key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    std::ofstream(dir_ / "server.ext") << "subjectAltName=IP:127.0.0.1,DNS:localhost\n";
    std::ofstream(dir_ / "client.ext") << "extendedKeyUsage=clientAuth\n";
    const std::string script =
        "set -e; cd '" + d + "'\n" +
        "for ca in ca other; do openssl req -x509 " + key + " -keyout $ca.key -out $ca.pem -days 2 -subj /CN=$ca; done\n" +
        "openssl req " + key + " -keyout server.key -out server.csr -subj /CN=localhost\n" +
        "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 "
        "-extfile server.ext\n" +
        "for ca in ca other; do openssl req " + key + " -keyout client-$ca.key -out client-$ca.csr -subj /CN=client\n" +
        "openssl x509 -req -in client-$ca.csr -CA $ca.pem -CAkey $ca.key -CAcreateserial -out client-$ca.pem -days 2 "
        "-extfile client.ext; done\n";
    std::ofstream(dir_ / "make.sh") << script;
    ASSERT_EQ(std::system(("sh '" + d + "/make.sh' >'" + d + "/openssl.log' 2>&1").c_str()), 0)
        << "openssl failed, see " << d << "/openssl.log";
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }
  static std::string file(const std::string& name) { return (dir_ / name).string(); }

  static std::string tls_yaml(const std::string& client_auth, const std::string& min_version = "1.2") {
    return "      tls:\n        cert_file: " + file("server.pem") + "\n        key_file: " + file("server.key") +
           "\n        ca_file: " + file("ca.pem") + "\n        client_auth: " + client_auth +
           "\n        min_version: \"" + min_version + "\"\n";
  }

  // A started source of `type` on 127.0.0.1:port with tls_yaml(client_auth, min_version).
  static std::unique_ptr<Source> start_source(EventSink& sink, uint16_t port, const std::string& type,
                                              const std::string& name, const std::string& client_auth,
                                              const std::string& min_version = "1.2") {
    auto source = test::make_source("    - type: " + type + "\n      name: " + name + "\n      listen: 127.0.0.1:" +
                                        std::to_string(port) + "\n" + tls_yaml(client_auth, min_version),
                                    sink);
    source->start();
    return source;
  }

  struct Result {
    bool handshake = false;
    std::string response;  // what the server answered, until it closed
  };
  // Connects with TLS to 127.0.0.1:port, verifying the server against ca.pem; with
  // `client` ("ca" / "other") presents that client certificate. Sends `data`; with
  // `reply` reads until the server closes (HTTP with Connection: close), else ends
  // the TLS session (close_notify).
  static Result send(uint16_t port, const std::string& data, const std::string& client = "",
                     int max_version = 0, bool reply = false) {
    Result r;
    asio::io_context ioc;
    ssl::context ctx(ssl::context::tls_client);
    ctx.load_verify_file(file("ca.pem"));
    ctx.set_verify_mode(ssl::verify_peer);
    if (!client.empty()) {
      ctx.use_certificate_chain_file(file("client-" + client + ".pem"));
      ctx.use_private_key_file(file("client-" + client + ".key"), ssl::context::pem);
    }
    if (max_version) SSL_CTX_set_max_proto_version(ctx.native_handle(), max_version);
    ssl::stream<asio::ip::tcp::socket> s(ioc, ctx);
    s.lowest_layer().connect({asio::ip::make_address("127.0.0.1"), port});
    // No test waits on a server that never answers: blocking reads give up after 5 s.
    const timeval tv{5, 0};
    ::setsockopt(s.lowest_layer().native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    boost::system::error_code ec;
    s.handshake(ssl::stream_base::client, ec);
    if (ec) return r;
    r.handshake = true;
    asio::write(s, asio::buffer(data), ec);
    if (!reply) {
      s.shutdown(ec);  // close_notify; the server closes when it has read everything
      return r;
    }
    char buf[4096];
    for (;;) {
      const size_t n = s.read_some(asio::buffer(buf), ec);
      r.response.append(buf, n);
      if (ec) break;
    }
    return r;
  }

  static uint64_t handshake_failures(const std::string& listener, const std::string& reason) {
    return static_cast<uint64_t>(
        test::metric("bf_tls_handshake_failures_total", {{"listener", listener}, {"reason", reason}}));
  }

  static inline fs::path dir_;
};

TEST_F(TlsSource, SyslogTcpOverTlsWithClientCertificate) {
  test::CapturingSink sink;
  const uint16_t port = test::free_port();
  auto source = start_source(sink, port, "syslog_tcp", "tls-syslog", "required");
  // RFC 5425 §4.3: octet counting over TLS.
  const std::string m1 = "<34>1 2026-01-02T03:04:05Z host app 1 ID1 - first";
  const std::string m2 = "<34>1 2026-01-02T03:04:06Z host app 1 ID2 - second";
  const Result r = send(port, std::to_string(m1.size()) + " " + m1 + std::to_string(m2.size()) + " " + m2, "ca");
  EXPECT_TRUE(r.handshake);
  ASSERT_TRUE(sink.wait_events(2));
  const std::string out = sink.text();
  EXPECT_NE(out.find("\"message\":\"first\""), std::string::npos) << out;
  EXPECT_NE(out.find("\"message\":\"second\""), std::string::npos) << out;
  EXPECT_NE(out.find("\"msgid\":\"ID2\""), std::string::npos) << out;
  source->stop();
}

TEST_F(TlsSource, WrongCaAndMissingClientCertificateAreRefusedAndCounted) {
  test::CapturingSink sink;
  const uint16_t port = test::free_port();
  auto source = start_source(sink, port, "syslog_tcp", "tls-refuse", "required");
  const uint64_t cert_before = handshake_failures("tls-refuse", "client_certificate");
  const std::string frame = "11 <13>refused";
  send(port, frame, "other");  // signed by a CA the source does not trust
  send(port, frame);           // no certificate at all
  ASSERT_TRUE(test::wait_until([&] { return handshake_failures("tls-refuse", "client_certificate") >= cert_before + 2; }));
  EXPECT_EQ(handshake_failures("tls-refuse", "client_certificate"), cert_before + 2);
  // A plain-text sender is not TLS: refused too, and nothing it sent is an event.
  test::send_tcp(port, "<13>plain text\n");
  ASSERT_TRUE(test::wait_until([&] { return handshake_failures("tls-refuse", "handshake") >= 1; }));
  // A trusted client still gets through afterwards.
  send(port, frame, "ca");
  ASSERT_TRUE(sink.wait_events(1));
  EXPECT_EQ(sink.events, 1u);
  EXPECT_NE(sink.text().find("\"message\":\"refused\""), std::string::npos) << sink.text();
  source->stop();
}

TEST_F(TlsSource, MinVersionRefusesOlderClients) {
  test::CapturingSink sink;
  const uint16_t port = test::free_port();
  auto source = start_source(sink, port, "tcp", "tls-min13", "none", "1.3");
  EXPECT_FALSE(send(port, "old\n", "", TLS1_2_VERSION).handshake);
  EXPECT_TRUE(test::wait_until([&] { return handshake_failures("tls-min13", "protocol_version") == 1; }));
  EXPECT_TRUE(send(port, "new\n", "", TLS1_3_VERSION).handshake);
  ASSERT_TRUE(sink.wait_events(1));
  EXPECT_NE(sink.text().find("\"message\":\"new\""), std::string::npos) << sink.text();
  EXPECT_EQ(sink.events, 1u);
  source->stop();
}

TEST_F(TlsSource, HttpsWithRequiredClientCertificate) {
  test::CapturingSink sink;
  const uint16_t port = test::free_port();
  auto source = start_source(sink, port, "http", "tls-http", "required");
  const std::string body = "{\"a\":1}\n{\"a\":2}\n";
  const std::string request = "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-ndjson\r\n"
                              "Connection: close\r\nContent-Length: " +
                              std::to_string(body.size()) + "\r\n\r\n" + body;
  const Result ok = send(port, request, "ca", 0, true);
  ASSERT_TRUE(ok.handshake);
  EXPECT_EQ(ok.response.rfind("HTTP/1.1 200", 0), 0u) << ok.response;
  EXPECT_NE(ok.response.find("\"accepted\":2"), std::string::npos) << ok.response;
  const uint64_t before = handshake_failures("tls-http", "client_certificate");
  const Result wrong = send(port, request, "other", 0, true);
  EXPECT_EQ(wrong.response.find("HTTP/1.1"), std::string::npos) << wrong.response;
  EXPECT_TRUE(test::wait_until([&] { return handshake_failures("tls-http", "client_certificate") == before + 1; }));
  EXPECT_EQ(sink.events, 2u);
  source->stop();
}

TEST_F(TlsSource, ConfigErrors) {
  test::CapturingSink sink;
  auto error = [&](const std::string& yaml) {
    try {
      test::make_source(yaml, sink);
    } catch (const std::exception& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  std::string err = error("    - type: syslog_tcp\n      tls:\n        cert_file: " + file("server.pem") +
                          "\n        key_file: " + file("server.key") + "\n        client_auth: required\n");
  EXPECT_NE(err.find("tls.ca_file: is required with client_auth: required"), std::string::npos) << err;
  err = error("    - type: tcp\n      tls:\n        client_auth: sometimes\n");
  EXPECT_NE(err.find("tls.client_auth: must be one of 'none', 'optional' or 'required'"), std::string::npos) << err;
  err = error("    - type: syslog_tcp\n      listen: 127.0.0.1:0\n      tls:\n        cert_file: " + file("nope.pem") +
              "\n        key_file: " + file("server.key") + "\n");
  EXPECT_NE(err.find("nope.pem"), std::string::npos) << err;
}

}  // namespace
}  // namespace bf
