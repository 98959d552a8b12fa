// The syslog sources through a real proxy: bytes on a loopback socket in, events at a
// recording receiver out. RFC 6587 framing per connection, framing errors, truncated
// frames, the timezone option and byte-exact `_raw_b64`.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/json.hpp>

#include "common/config.h"
#include "common/time.h"
#include "fixtures/net_helpers.h"
#include "proxy/proxy.h"
#include "test_util.h"

namespace bf {
namespace {

namespace json = boost::json;

std::string yaml(const test::RecordingReceiver& rx, const test::TempDir& dir, const std::string& sources) {
  return "proxy:\n"
         "  receiver:\n"
         "    url: " + rx.url() + "\n"
         "    ingest_key: k\n"
         "    max_retries: 0\n"
         "  batch:\n"
         "    max_age: 50ms\n"
         "  spool:\n"
         "    dir: " + dir.str() + "\n"
         "  sources:\n" + sources;
}

std::unique_ptr<Proxy> make_proxy(const std::string& text) {
  ConfigNode root = ConfigNode::parse(text, "test.yaml");
  return std::make_unique<Proxy>(root.child("proxy"));
}

std::string s(const Event& e, const char* key) {
  auto* v = e.if_contains(key);
  return v && v->is_string() ? std::string(v->as_string()) : "<absent>";
}

const Event* with_message(const std::vector<Event>& events, const std::string& m) {
  for (auto& e : events)
    if (s(e, "message") == m) return &e;
  return nullptr;
}

// A connection that sends, then reads until the proxy closes it (or we time out) and
// reports whether the proxy closed first.
bool send_and_see_close(uint16_t port, const std::string& bytes, bool half_close) {
  const int fd = test::connect_tcp(port);
  if (fd < 0) throw std::runtime_error("connect failed");
  timeval tv{3, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  if (half_close) ::shutdown(fd, SHUT_WR);
  char buf[64];
  const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
  ::close(fd);
  return n == 0;
}

std::string frame(const std::string& m) { return std::to_string(m.size()) + " " + m; }

TEST(SyslogSource, TcpFramingErrorsAndTruncatedFramesThroughTheProxy) {
  test::TempDir dir;
  test::RecordingReceiver rx;
  auto p = make_proxy(yaml(rx, dir,
                           "    - type: syslog_tcp\n      name: fr-tcp\n      listen: 127.0.0.1:0\n"
                           "      timezone: Europe/Berlin\n"));
  p->start();
  const uint16_t port = p->source_port("fr-tcp");
  const Labels l{{"listener", "fr-tcp"}};
  const int64_t errors0 = test::metric("bf_tcp_framing_errors_total", l),
                incomplete0 = test::metric("bf_tcp_frames_incomplete_total", l);

  // 1. Octet counting decided by the first frame; a frame without a length closes the
  //    connection and nothing after it is delivered.
  EXPECT_TRUE(send_and_see_close(
      port, frame("<13>1 2024-07-01T12:00:00 berlin app - - - whole frame") + "<13>oops no length\n" +
                frame("<13>1 - h a - - - after the error"),
      false));
  // 2. A connection that ends inside a frame: delivered as far as it got, marked.
  EXPECT_TRUE(send_and_see_close(port, "200 <13>Jul  1 12:00:00 host app: cut short", true));
  // 3. A newline-framed connection: digits at the start of a later line are content.
  EXPECT_TRUE(send_and_see_close(port, "<13>Jul  1 12:00:00 host app: line one\n3 apples on line two\n", true));

  ASSERT_TRUE(test::wait_until([&] { return rx.accepted_event_count() >= 4; })) << rx.accepted_event_count();
  const auto events = rx.accepted_events();
  EXPECT_EQ(events.size(), 4u);
  EXPECT_EQ(with_message(events, "after the error"), nullptr);
  EXPECT_EQ(with_message(events, "oops no length"), nullptr);

  const Event* e = with_message(events, "whole frame");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(s(*e, "_time"), "2024-07-01T10:00:00.000000Z");  // offset-less, read in Europe/Berlin
  EXPECT_TRUE(e->at("_zone_inferred").as_bool());
  EXPECT_EQ(e->at("version").as_int64(), 1);
  EXPECT_FALSE(e->contains("_truncated"));

  e = with_message(events, "cut short");
  ASSERT_NE(e, nullptr);
  EXPECT_TRUE(e->at("_truncated").as_bool());
  EXPECT_EQ(s(*e, "app_name"), "app");

  ASSERT_NE(with_message(events, "line one"), nullptr);
  e = with_message(events, "3 apples on line two");
  ASSERT_NE(e, nullptr);
  EXPECT_TRUE(e->at("_pri_defaulted").as_bool());

  EXPECT_EQ(test::metric("bf_tcp_framing_errors_total", l) - errors0, 1);
  EXPECT_EQ(test::metric("bf_tcp_frames_incomplete_total", l) - incomplete0, 1);
  p->stop();
}

TEST(SyslogSource, UdpKeepsBytesExactAndRejectsABadTimezone) {
  test::TempDir dir;
  test::RecordingReceiver rx;
  auto p = make_proxy(yaml(rx, dir,
                           "    - type: syslog_udp\n      name: b-udp\n      listen: 127.0.0.1:0\n"
                           "      timezone: America/New_York\n"));
  p->start();
  const std::string binary("<13>Jan 15 10:00:00 host app: \xFF\xFE bin\0ary\0", 41);
  test::send_udp(p->source_port("b-udp"), binary);
  test::send_udp(p->source_port("b-udp"), "<13>date=2024-01-15 time=10:00:00 devname=\"fgt\" logid=\"0100032001\"");
  ASSERT_TRUE(test::wait_until([&] { return rx.accepted_event_count() >= 2; }));
  const auto events = rx.accepted_events();
  const Event* e = nullptr;
  for (auto& ev : events)
    if (ev.contains("_raw_b64")) e = &ev;
  ASSERT_NE(e, nullptr);
  EXPECT_FALSE(e->contains("_raw"));
  // Decode and compare every byte, the NULs included.
  std::string b64 = s(*e, "_raw_b64"), back(b64.size(), '\0');
  static const std::string kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t n = 0;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : b64) {
    if (c == '=') break;
    acc = (acc << 6) | static_cast<uint32_t>(kAlphabet.find(c));
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      back[n++] = static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  back.resize(n);
  EXPECT_EQ(back, binary);
  EXPECT_EQ(s(*e, "message"), std::string("\xEF\xBF\xBD\xEF\xBF\xBD bin\0ary", 14));
  EXPECT_EQ(s(*e, "_time").substr(11, 8), "15:00:00");  // 10:00 in New York (EST) is 15:00 UTC

  const Event* kv = nullptr;
  for (auto& ev : events)
    if (ev.contains("kv")) kv = &ev;
  ASSERT_NE(kv, nullptr);
  EXPECT_EQ(kv->at("kv").at("logid"), "0100032001");
  EXPECT_EQ(s(*kv, "_time"), "2024-01-15T15:00:00.000000Z");
  p->stop();

  try {
    make_proxy(yaml(rx, dir, "    - type: syslog_udp\n      listen: 127.0.0.1:0\n      timezone: Mars/Base\n"));
    ADD_FAILURE() << "accepted an unknown zone";
  } catch (const ConfigError& err) {
    EXPECT_NE(std::string(err.what()).find("timezone"), std::string::npos) << err.what();
    EXPECT_NE(std::string(err.what()).find("Mars/Base"), std::string::npos) << err.what();
  }
}

}  // namespace
}  // namespace bf
