// The sflow, netflow, udp and tcp sources in a real proxy on loopback, delivering to
// a recording receiver: datagrams in, events out, bad input counted on /metrics.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/config.h"
#include "flow_test_util.h"
#include "proxy/proxy.h"
#include "test_util.h"

// Log capture for BadDatagramsAreLoggedRateLimitedPerSource.
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <sstream>

namespace bf {
namespace {

using test::Bytes;

std::unique_ptr<Proxy> make_proxy(const std::string& receiver_url, const std::string& spool_dir,
                                  const std::string& sources) {
  const std::string yaml = "proxy:\n  receiver:\n    url: " + receiver_url +
                           "\n    ingest_key: k\n    max_retries: 0\n  batch:\n    max_events: 1000\n"
                           "    max_age: 50ms\n  spool:\n    dir: " + spool_dir + "\n  sources:\n" + sources;
  ConfigNode root = ConfigNode::parse(yaml, "test.yaml");
  return std::make_unique<Proxy>(root.child("proxy"));
}

std::vector<Event> events_in(const test::RecordingReceiver& rx, const std::string& dataset) {
  std::vector<Event> out;
  for (auto& r : rx.accepted())
    if (r.dataset == dataset)
      for (auto& e : r.events) out.push_back(e);
  return out;
}

std::string v5(uint32_t sequence) {
  Bytes b;
  b.u16(5).u16(1).u32(100000).u32(1764676800).u32(0).u32(sequence).u8(0).u8(0).u16(0);
  b.ipv4("10.9.8.7").ipv4("10.6.5.4").ipv4("0.0.0.0").u16(1).u16(2).u32(3).u32(4).u32(99000).u32(99500);
  b.u16(5).u16(6).u8(0).u8(0).u8(17).u8(0).u16(0).u16(0).u8(0).u8(0).u16(0);
  return b.b;
}

std::string sflow_counters(uint32_t sequence) {
  Bytes b;
  b.u32(5).u32(1).ipv4("127.0.0.9").u32(0).u32(sequence).u32(1000).u32(1);
  b.u32(2).u32(12 + 8 + 52).u32(1).u32(7).u32(1).u32(2).u32(52);
  for (uint32_t i = 0; i < 13; ++i) b.u32(i);
  return b.b;
}

TEST(FlowSources, NetflowSflowUdpAndTcpEndToEnd) {
  test::TempDir dir;
  test::RecordingReceiver rx;
  auto p = make_proxy(rx.url(), dir.str(),
                      "    - type: netflow\n      name: nf\n      listen: 127.0.0.1:0\n"
                      "    - type: sflow\n      name: sf\n      listen: 127.0.0.1:0\n      workers: 2\n"
                      "      receive_buffer: 1MiB\n"
                      "    - type: udp\n      name: lines-udp\n      listen: 127.0.0.1:0\n"
                      "    - type: tcp\n      name: lines-tcp\n      listen: 127.0.0.1:0\n      format: json\n"
                      "      dataset: jsonl\n");
  const int64_t nf_errors0 = test::metric("bf_flow_errors_total", {{"source", "nf"}, {"error", "bad_version"}});
  const int64_t sf_trunc0 = test::metric("bf_flow_errors_total", {{"source", "sf"}, {"error", "truncated"}});
  const int64_t tcp_perr0 = test::metric("bf_proxy_parse_errors_total", {{"source", "lines-tcp"}});
  p->start();
  const uint16_t nf = p->source_port("nf"), sf = p->source_port("sf"), lu = p->source_port("lines-udp"),
                 lt = p->source_port("lines-tcp");
  for (uint32_t i = 0; i < 5; ++i) test::send_udp(nf, v5(i));
  test::send_udp(nf, std::string("\x00\x63garbage", 9));  // version 99
  for (uint32_t i = 0; i < 5; ++i) test::send_udp(sf, sflow_counters(i));
  test::send_udp(sf, sflow_counters(9).substr(0, 40));
  test::send_udp(lu, "plain text line\n{\"level\":\"warn\",\"n\":3}\n\nbad \xff byte");
  test::send_tcp(lt, "{\"a\":1,\"_time\":\"2026-01-02T03:04:05Z\"}\nnot json\n");

  ASSERT_TRUE(test::wait_until([&] {
    return events_in(rx, "netflow").size() >= 5 && events_in(rx, "sflow").size() >= 5 &&
           events_in(rx, "udp").size() >= 3 && events_in(rx, "jsonl").size() >= 2;
  }));
  auto nfe = events_in(rx, "netflow");
  EXPECT_EQ(nfe.size(), 5u);
  EXPECT_EQ(test::str(nfe[0], "sourceIPv4Address"), "10.9.8.7");
  EXPECT_EQ(test::str(nfe[0], "_source"), "nf");
  EXPECT_EQ(test::str(nfe[0], "_time"), "2025-12-02T11:59:59.500000Z");
  EXPECT_EQ(test::str(nfe[0], "_peer").rfind("127.0.0.1:", 0), 0u);
  auto sfe = events_in(rx, "sflow");
  EXPECT_EQ(sfe.size(), 5u);
  EXPECT_EQ(test::str(sfe[0], "counter_type"), "ethernet_interface");
  EXPECT_EQ(test::str(sfe[0], "agent"), "127.0.0.9");

  auto lue = events_in(rx, "udp");
  ASSERT_EQ(lue.size(), 3u);
  EXPECT_EQ(test::str(lue[0], "message"), "plain text line");
  EXPECT_EQ(test::str(lue[1], "level"), "warn");
  EXPECT_EQ(test::num(lue[1], "n"), 3);
  EXPECT_EQ(test::str(lue[2], "message"), "bad \xEF\xBF\xBD byte");
  EXPECT_EQ(test::str(lue[2], "_raw_b64"), "YmFkIP8gYnl0ZQ==");  // the bytes as sent
  auto lte = events_in(rx, "jsonl");
  ASSERT_EQ(lte.size(), 2u);
  EXPECT_EQ(test::num(lte[0], "a"), 1);
  EXPECT_EQ(test::str(lte[0], "_time"), "2026-01-02T03:04:05.000000Z");
  EXPECT_EQ(test::str(lte[1], "message"), "not json");
  EXPECT_EQ(test::str(lte[1], "_parse_error"), "not a JSON object");

  EXPECT_TRUE(test::wait_until([&] {
    return test::metric("bf_flow_errors_total", {{"source", "nf"}, {"error", "bad_version"}}) == nf_errors0 + 1 &&
           test::metric("bf_flow_errors_total", {{"source", "sf"}, {"error", "truncated"}}) == sf_trunc0 + 1;
  }));
  EXPECT_EQ(test::metric("bf_proxy_parse_errors_total", {{"source", "lines-tcp"}}), tcp_perr0 + 1);
  EXPECT_NE(metrics().prometheus_text().find("bf_flow_templates{source=\"nf\"}"), std::string::npos);
  p->stop();
}

// A burst of bad datagrams over both workers of a source (each from a new port, so the
// kernel spreads them) is logged once — the workers share the source's LogLimiter
// (its interval is tested in tests/unit/common/log_limiter_test.cpp) — and every one
// is counted.
TEST(FlowSources, BadDatagramsAreLoggedRateLimitedPerSource) {
  test::TempDir dir;
  test::RecordingReceiver rx;
  std::ostringstream log;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(log);
  spdlog::default_logger()->sinks().push_back(sink);
  auto p = make_proxy(rx.url(), dir.str(), "    - type: sflow\n      name: sf-log\n      listen: 127.0.0.1:0\n      workers: 2\n");
  const auto truncated = [] { return test::metric("bf_flow_errors_total", {{"source", "sf-log"}, {"error", "truncated"}}); };
  const int64_t t0 = truncated();
  p->start();
  const uint16_t sf = p->source_port("sf-log");
  for (uint32_t i = 0; i < 20; ++i) test::send_udp(sf, sflow_counters(i).substr(0, 40));
  EXPECT_TRUE(test::wait_until([&] { return truncated() == t0 + 20; }));
  p->stop();
  auto& sinks = spdlog::default_logger()->sinks();
  sinks.erase(std::remove(sinks.begin(), sinks.end(), sink), sinks.end());
  const std::string text = log.str();
  size_t lines = 0;
  for (size_t pos = 0; (pos = text.find("sflow source 'sf-log': a datagram of 40 bytes from 127.0.0.1:", pos)) !=
                       std::string::npos;
       ++pos)
    ++lines;
  EXPECT_EQ(lines, 1u) << text;
  EXPECT_NE(text.find("could not be decoded in full (truncated); counted in bf_flow_errors_total; 0 more such "
                      "datagrams since the last line were not logged"),
            std::string::npos)
      << text;
}

TEST(FlowSources, ConfigErrorsNameTheKey) {
  test::TempDir dir;
  auto err = [&](const std::string& src) -> std::string {
    try {
      make_proxy("http://127.0.0.1:1", dir.str(), src);
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "<none>";
  };
  EXPECT_NE(err("    - type: sflow\n      listen: 127.0.0.1:0\n      workers: 0\n").find("workers"),
            std::string::npos);
  EXPECT_NE(err("    - type: netflow\n      listen: 127.0.0.1:0\n      max_templates: 0\n").find("max_templates"),
            std::string::npos);
  EXPECT_NE(err("    - type: udp\n      listen: 127.0.0.1:0\n      format: xml\n").find("format"),
            std::string::npos);
  EXPECT_NE(err("    - type: ipfix\n      listen: 127.0.0.1:0\n      template_wiat: 1s\n").find("template_wiat"),
            std::string::npos);
}

}  // namespace
}  // namespace bf

namespace bf {
namespace {

// An IPFIX message of `n` templates (ids from `first`), 2 fields each.
std::string ipfix_templates(uint16_t first, uint16_t n) {
  Bytes b;
  b.u16(10).u16(0).u32(1764676800).u32(0).u32(1);
  b.u16(2).u16(4 + n * 12u);
  for (uint16_t t = 0; t < n; ++t) b.u16(first + t).u16(2).u16(8).u16(4).u16(12).u16(4);
  b.patch16(2, static_cast<uint32_t>(b.size()));
  return b.b;
}

// A template flood from 40 exporters (40 sockets, open together, so 40 source
// ports) into running ipfix sources: each cache stays at its bounds (the total, and
// the per-exporter share) and every eviction is on /metrics.
TEST(FlowSources, TemplateFloodIsBoundedAndCountedOnMetrics) {
  test::TempDir dir;
  test::RecordingReceiver rx;
  auto p = make_proxy(rx.url(), dir.str(),
                      "    - type: ipfix\n      name: fx\n      listen: 127.0.0.1:0\n      max_templates: 50\n"
                      "    - type: ipfix\n      name: fy\n      listen: 127.0.0.1:0\n      max_templates: 1000\n"
                      "      max_templates_per_exporter: 5\n");
  const Labels fx{{"source", "fx"}, {"error", "template_evicted"}}, fy{{"source", "fy"}, {"error", "template_evicted"}};
  const int64_t fx0 = test::metric("bf_flow_errors_total", fx), fy0 = test::metric("bf_flow_errors_total", fy);
  p->start();
  std::vector<int> fds;
  for (int e = 0; e < 40; ++e) fds.push_back(::socket(AF_INET, SOCK_DGRAM, 0));
  for (const char* source : {"fx", "fy"}) {
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    to.sin_port = htons(p->source_port(source));
    for (size_t e = 0; e < fds.size(); ++e) {
      const std::string d = ipfix_templates(static_cast<uint16_t>(256 + e * 10), 10);
      ASSERT_EQ(::sendto(fds[e], d.data(), d.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to),
                static_cast<ssize_t>(d.size()));
    }
  }
  for (int fd : fds) ::close(fd);
  // 400 distinct templates each. fx keeps 50 in all: 350 evicted. fy keeps 5 of each
  // exporter's 10: 200 kept, 200 evicted (its total bound of 1000 is not reached).
  EXPECT_TRUE(test::wait_until([&] {
    return test::metric("bf_flow_errors_total", fx) == fx0 + 350 && test::metric("bf_flow_errors_total", fy) == fy0 + 200;
  })) << test::metric("bf_flow_errors_total", fx) - fx0 << " " << test::metric("bf_flow_errors_total", fy) - fy0;
  EXPECT_EQ(test::metric("bf_flow_templates", {{"source", "fx"}}), 50);
  EXPECT_EQ(test::metric("bf_flow_templates", {{"source", "fy"}}), 200);
  p->stop();
}

}  // namespace
}  // namespace bf
