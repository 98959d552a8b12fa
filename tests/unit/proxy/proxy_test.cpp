#include "proxy/proxy.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "common/config.h"
#include "common/spool.h"
#include "common/time.h"
#include "common/ulid.h"
#include "common/utf8.h"
#include "fixtures/component_contract.h"
#include "net/http_client.h"
#include "proxy/source.h"
#include "proxy/syslog_parser.h"
#include "test_util.h"

namespace bf {
namespace {

using namespace std::chrono_literals;
namespace json = boost::json;

std::string common_yaml(const std::string& receiver_url, const std::string& spool_dir) {
  return "proxy:\n"
         "  receiver:\n"
         "    url: " + receiver_url + "\n"
         "    ingest_key: k3y\n"
         "    max_retries: 0\n"
         "    retry_backoff: 20ms\n"
         "    retry_backoff_max: 200ms\n"
         "  batch:\n"
         "    max_events: 1000\n"
         "    max_age: 50ms\n"
         "  spool:\n"
         "    dir: " + spool_dir + "\n"
         "  forward_concurrency: 2\n";
}

std::unique_ptr<Proxy> make_proxy(const std::string& yaml) {
  ConfigNode root = ConfigNode::parse(yaml, "test.yaml");
  return std::make_unique<Proxy>(root.child("proxy"));
}

std::string config_error(const std::string& yaml) {
  try {
    make_proxy(yaml);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "<no ConfigError>";
}

HttpResult post(uint16_t port, const std::string& path, const std::string& body, Headers headers = {}) {
  HttpClientOptions o;
  o.max_retries = 0;
  HttpClient c(o);
  return c.send("POST", "http://127.0.0.1:" + std::to_string(port) + path, headers, body);
}

std::vector<Event> events_in(const test::RecordingReceiver& rx, const std::string& dataset) {
  std::vector<Event> out;
  for (auto& r : rx.accepted())
    if (r.dataset == dataset)
      for (auto& e : r.events) out.push_back(e);
  return out;
}

std::string s(const Event& e, const char* key) {
  auto* v = e.if_contains(key);
  return v && v->is_string() ? std::string(v->as_string()) : "<absent>";
}

const Event* find_message(const std::vector<Event>& events, const std::string& message) {
  for (auto& e : events)
    if (s(e, "message") == message) return &e;
  return nullptr;
}

TEST(ProxyConfig, ErrorsNameTheProblem) {
  test::TempDir dir;
  const std::string base = common_yaml("http://127.0.0.1:1", dir.str());
  std::string err = config_error(base + "  forward_concurency: 3\n");
  EXPECT_NE(err.find("forward_concurency"), std::string::npos) << err;

  err = config_error(base + "  sources:\n    - type: syslog_carrier_pigeon\n");
  EXPECT_NE(err.find("syslog_carrier_pigeon"), std::string::npos) << err;
  EXPECT_NE(err.find("syslog_udp"), std::string::npos) << err;
  EXPECT_NE(err.find("http"), std::string::npos) << err;

  err = config_error(base + "  sources:\n    - type: syslog_udp\n      listen: 127.0.0.1:0\n      tenant: Bad/Tenant\n");
  EXPECT_NE(err.find("tenant"), std::string::npos) << err;

  err = config_error(base + "  sources:\n    - type: syslog_udp\n      listen: 127.0.0.1:0\n      lsiten: x\n");
  EXPECT_NE(err.find("lsiten"), std::string::npos) << err;

  err = config_error(base +
                     "  sources:\n    - type: syslog_udp\n      listen: 127.0.0.1:0\n"
                     "    - type: syslog_udp\n      listen: 127.0.0.1:0\n");
  EXPECT_NE(err.find("duplicate source name 'syslog_udp:0'"), std::string::npos) << err;

  err = config_error("proxy:\n  receiver:\n    url: http://127.0.0.1:1\n  spool:\n    dir: " + dir.str() + "\n");
  EXPECT_NE(err.find("ingest_key"), std::string::npos) << err;
}

TEST(ProxyConfig, DefaultSourceNameAndBoundPort) {
  test::TempDir dir;
  auto p = make_proxy(common_yaml("http://127.0.0.1:1", dir.str()) +
                      "  sources:\n    - type: syslog_udp\n      listen: 127.0.0.1:0\n");
  EXPECT_FALSE(p->ready());
  p->start();
  EXPECT_TRUE(p->ready());
  EXPECT_GT(p->source_port("syslog_udp:0"), 0);
  EXPECT_THROW(p->source_port("nope"), std::out_of_range);
  p->stop();
  EXPECT_FALSE(p->ready());
}

// Threads of this process named `comm` (/proc/self/task/<tid>/comm).
size_t threads_named(const std::string& comm) {
  size_t n = 0;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream in(task.path() / "comm");
    std::string name;
    std::getline(in, name);
    n += name == comm;
  }
  return n;
}

// syslog_udp with workers: 2 binds two SO_REUSEPORT sockets, each with its receive
// and parsing thread; datagrams from many senders (a socket each) are all delivered
// once, parsed as with one worker, and counted under the source's name.
TEST(Proxy, SyslogUdpWorkersShareThePortAndLoseNothing) {
  test::TempDir dir;
  test::RecordingReceiver rx;
  const size_t rx_threads0 = threads_named("bf-proxy-udp-rx");
  auto p = make_proxy(common_yaml(rx.url(), dir.str()) +
                      "  sources:\n"
                      "    - type: syslog_udp\n      name: udp-workers\n      listen: 127.0.0.1:0\n"
                      "      workers: 2\n      dataset: syslog\n");
  const int64_t events0 = test::metric("bf_proxy_events_total", {{"source", "udp-workers"}}),
                perr0 = test::metric("bf_proxy_parse_errors_total", {{"source", "udp-workers"}});
  p->start();
  const uint16_t port = p->source_port("udp-workers");
  constexpr int kMessages = 200;
  for (int i = 0; i < kMessages; ++i)  // a new socket, so a new source port, for each
    test::send_udp(port, "<14>1 2026-12-04T10:00:00Z host" + std::to_string(i % 7) + " app - - - message " +
                             std::to_string(i));
  test::send_udp(port, "<999>not syslog");
  ASSERT_TRUE(test::wait_until([&] { return events_in(rx, "syslog").size() >= kMessages + 1; }))
      << events_in(rx, "syslog").size();
  EXPECT_EQ(threads_named("bf-proxy-udp-rx"), rx_threads0 + 2);  // named once they ran
  std::set<std::string> seen;
  std::set<std::string> peers;
  for (const Event& e : events_in(rx, "syslog")) {
    EXPECT_EQ(s(e, "_source"), "udp-workers");
    if (e.contains("_parse_error")) continue;
    EXPECT_EQ(s(e, "app_name"), "app");
    EXPECT_TRUE(seen.insert(s(e, "message")).second) << "delivered twice: " << s(e, "message");
    peers.insert(s(e, "_peer"));
  }
  EXPECT_EQ(seen.size(), static_cast<size_t>(kMessages));
  EXPECT_GT(peers.size(), 1u);
  EXPECT_EQ(test::metric("bf_proxy_events_total", {{"source", "udp-workers"}}) - events0, kMessages + 1);
  EXPECT_EQ(test::metric("bf_proxy_parse_errors_total", {{"source", "udp-workers"}}) - perr0, 1);
  p->stop();
  EXPECT_EQ(threads_named("bf-proxy-udp-rx"), rx_threads0);
}

TEST(Proxy, EndToEndSyslogUdpTcpAndHttp) {
  test::TempDir dir;
  test::RecordingReceiver rx;
  auto p = make_proxy(common_yaml(rx.url(), dir.str()) +
                      "  sources:\n"
                      "    - type: syslog_udp\n      name: e2e-udp\n      listen: 127.0.0.1:0\n"
                      "      tenant: acme\n      dataset: syslog\n"
                      "    - type: syslog_tcp\n      name: e2e-tcp\n      listen: 127.0.0.1:0\n"
                      "      tenant: acme\n      dataset: syslog-tcp\n"
                      "    - type: http\n      name: e2e-http\n      listen: 127.0.0.1:0\n      path: /ingest\n"
                      "      token: s3cret\n      tenant: acme\n      dataset: app\n");
  const int64_t udp0 = test::metric("bf_proxy_events_total", {{"source", "e2e-udp"}}),
                tcp0 = test::metric("bf_proxy_events_total", {{"source", "e2e-tcp"}}),
                http0 = test::metric("bf_proxy_events_total", {{"source", "e2e-http"}}),
                udp_bytes0 = test::metric("bf_proxy_bytes_total", {{"source", "e2e-udp"}}),
                tcp_bytes0 = test::metric("bf_proxy_bytes_total", {{"source", "e2e-tcp"}}),
                http_bytes0 = test::metric("bf_proxy_bytes_total", {{"source", "e2e-http"}}),
                perr0 = test::metric("bf_proxy_parse_errors_total", {{"source", "e2e-udp"}});
  p->start();
  ASSERT_TRUE(p->ready());
  const uint16_t udp = p->source_port("e2e-udp"), tcp = p->source_port("e2e-tcp"),
                 http = p->source_port("e2e-http");

  test::send_udp(udp, "<34>1 2024-05-01T10:00:00.250Z udphost myapp 77 ID1 [meta@1 k=\"v\"] over udp\n");
  test::send_udp(udp, "<13>May  1 10:00:01 bsdhost cron[5]: bsd over udp");
  test::send_udp(udp, "<999>not syslog at all");  // no valid PRI: kept whole, with _parse_error
  const std::string octet = "<14>1 2024-05-01T10:00:03Z tcphost app - - - octet counted";
  // Each connection keeps the framing its first frame shows (RFC 6587): one of each.
  test::send_tcp(tcp, "<13>1 2024-05-01T10:00:02Z tcphost app - - - line framed\n");
  test::send_tcp(tcp, std::to_string(octet.size()) + " " + octet);
  Headers h{{"Authorization", "Bearer s3cret"}, {"Content-Type", "application/x-ndjson"}};
  HttpResult r = post(http, "/ingest",
                      "{\"message\":\"from http\",\"user\":\"ann\",\"_time\":\"2024-05-01T12:00:00+02:00\"}\n"
                      "{\"message\":\"second\",\"_source\":\"spoofed\"}\n",
                      h);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body).at("accepted").as_int64(), 2);

  ASSERT_TRUE(test::wait_until([&] {
    return events_in(rx, "syslog").size() == 3 && events_in(rx, "syslog-tcp").size() == 2 &&
           events_in(rx, "app").size() == 2;
  })) << rx.requests().size();
  for (auto& req : rx.accepted()) {
    EXPECT_EQ(req.tenant, "acme");
    EXPECT_EQ(req.authorization, "Bearer k3y");
    EXPECT_TRUE(is_valid_ulid(req.batch_id));
  }

  auto udp_events = events_in(rx, "syslog");
  const Event* e = find_message(udp_events, "over udp");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(s(*e, "hostname"), "udphost");
  EXPECT_EQ(s(*e, "app_name"), "myapp");
  EXPECT_EQ(s(*e, "procid"), "77");
  EXPECT_EQ(s(*e, "msgid"), "ID1");
  EXPECT_EQ(e->at("facility").as_int64(), 4);
  EXPECT_EQ(e->at("severity").as_int64(), 2);
  EXPECT_EQ(e->at("structured_data").at("meta@1").at("k"), "v");
  EXPECT_EQ(s(*e, "_time"), "2024-05-01T10:00:00.250000Z");
  EXPECT_EQ(s(*e, "_source"), "e2e-udp");
  EXPECT_EQ(s(*e, "_peer").rfind("127.0.0.1:", 0), 0u) << s(*e, "_peer");
  EXPECT_TRUE(parse_rfc3339(s(*e, "_received"), true).has_value()) << s(*e, "_received");
  EXPECT_EQ(s(*e, "_raw").rfind("<34>1 2024-05-01T10:00:00.250Z", 0), 0u);
  e = find_message(udp_events, "bsd over udp");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(s(*e, "app_name"), "cron");
  EXPECT_EQ(s(*e, "hostname"), "bsdhost");
  e = find_message(udp_events, "<999>not syslog at all");
  ASSERT_NE(e, nullptr);
  EXPECT_TRUE(e->contains("_parse_error"));
  EXPECT_EQ(test::metric("bf_proxy_parse_errors_total", {{"source", "e2e-udp"}}) - perr0, 1);

  auto tcp_events = events_in(rx, "syslog-tcp");
  e = find_message(tcp_events, "line framed");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(s(*e, "_time"), "2024-05-01T10:00:02.000000Z");
  EXPECT_EQ(s(*e, "_source"), "e2e-tcp");
  e = find_message(tcp_events, "octet counted");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(s(*e, "_time"), "2024-05-01T10:00:03.000000Z");

  auto http_events = events_in(rx, "app");
  e = find_message(http_events, "from http");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(s(*e, "user"), "ann");
  EXPECT_EQ(s(*e, "_time"), "2024-05-01T10:00:00.000000Z");
  EXPECT_EQ(s(*e, "_source"), "e2e-http");
  EXPECT_EQ(s(*e, "_peer").rfind("127.0.0.1:", 0), 0u);
  e = find_message(http_events, "second");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(s(*e, "_source"), "e2e-http");  // system fields are the proxy's
  EXPECT_EQ(s(*e, "_time"), s(*e, "_received"));

  EXPECT_EQ(test::metric("bf_proxy_events_total", {{"source", "e2e-udp"}}) - udp0, 3);
  EXPECT_EQ(test::metric("bf_proxy_events_total", {{"source", "e2e-tcp"}}) - tcp0, 2);
  EXPECT_EQ(test::metric("bf_proxy_events_total", {{"source", "e2e-http"}}) - http0, 2);
  EXPECT_GT(test::metric("bf_proxy_bytes_total", {{"source", "e2e-udp"}}) - udp_bytes0, 100);
  EXPECT_EQ(test::metric("bf_proxy_bytes_total", {{"source", "e2e-tcp"}}) - tcp_bytes0,
            int64_t(std::string("<13>1 2024-05-01T10:00:02Z tcphost app - - - line framed").size() + octet.size()));
  EXPECT_GT(test::metric("bf_proxy_bytes_total", {{"source", "e2e-http"}}) - http_bytes0, 50);
  p->stop();
}

TEST(Proxy, HttpSourceRequestHandling) {
  test::TempDir dir;
  test::RecordingReceiver rx;
  auto p = make_proxy(common_yaml(rx.url(), dir.str()) +
                      "  sources:\n"
                      "    - type: http\n      name: h2\n      listen: 127.0.0.1:0\n"
                      "      token: s3cret\n      tenant: acme\n      dataset: web\n");
  p->start();
  const uint16_t port = p->source_port("h2");
  const Headers auth{{"Authorization", "Bearer s3cret"}};
  const int64_t unauth0 = test::metric("bf_proxy_rejected_total", {{"source", "h2"}, {"reason", "unauthorized"}});
  const int64_t badjson0 = test::metric("bf_proxy_rejected_total", {{"source", "h2"}, {"reason", "bad_json"}});

  HttpResult r = post(port, "/", "{\"message\":\"no token\"}");
  EXPECT_EQ(r.status, 401);
  r = post(port, "/", "{\"message\":\"wrong token\"}", {{"Authorization", "Bearer nope"}});
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(test::metric("bf_proxy_rejected_total", {{"source", "h2"}, {"reason", "unauthorized"}}) - unauth0, 2);

  r = post(port, "/", "{\"message\":\"ok line\"}\n{\"message\": broken}\n{\"message\":\"third\"}\n", auth);
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("line 2"), std::string::npos) << r.body;
  r = post(port, "/", "{\"message\":\"ok\"}\n[1]\n", auth);
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("line 2"), std::string::npos) << r.body;
  EXPECT_EQ(test::metric("bf_proxy_rejected_total", {{"source", "h2"}, {"reason", "bad_json"}}) - badjson0, 2);

  Headers br = auth;
  br["Content-Encoding"] = "br";
  r = post(port, "/", "{}", br);
  EXPECT_EQ(r.status, 415);

  // A single object, a pretty-printed one, an array, gzip and zstd bodies.
  r = post(port, "/", "{\"message\":\"single\"}", auth);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body).at("accepted").as_int64(), 1);
  r = post(port, "/", "{\n  \"message\": \"pretty\",\n  \"n\": 1\n}\n", auth);
  ASSERT_EQ(r.status, 200) << r.body;
  r = post(port, "/", "[{\"message\":\"arr1\"},{\"message\":\"arr2\"}]", auth);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body).at("accepted").as_int64(), 2);
  Headers gz = auth;
  gz["Content-Encoding"] = "gzip";
  r = post(port, "/", compress(Encoding::gzip, "{\"message\":\"gz\"}\n"), gz);
  ASSERT_EQ(r.status, 200) << r.body;
  Headers zs = auth;
  zs["Content-Encoding"] = "zstd";
  r = post(port, "/", compress(Encoding::zstd, "{\"message\":\"zs\"}\n"), zs);
  ASSERT_EQ(r.status, 200) << r.body;
  r = post(port, "/", "not gzip", gz);
  EXPECT_EQ(r.status, 400);

  // The acknowledgement means the events are in the spool or already at the receiver.
  ASSERT_TRUE(test::wait_until([&] { return events_in(rx, "web").size() == 6; }));
  std::this_thread::sleep_for(200ms);
  auto got = events_in(rx, "web");
  std::set<std::string> messages;
  for (auto& e : got) messages.insert(s(e, "message"));
  EXPECT_EQ(messages, (std::set<std::string>{"single", "pretty", "arr1", "arr2", "gz", "zs"}));
  p->stop();
}

TEST(Proxy, HttpSourceTextPlainBodiesAreOneEventPerLine) {
  test::TempDir dir;
  test::RecordingReceiver rx;
  auto p = make_proxy(common_yaml(rx.url(), dir.str()) +
                      "  sources:\n"
                      "    - type: http\n      name: h-text\n      listen: 127.0.0.1:0\n      dataset: lines\n");
  p->start();
  const uint16_t port = p->source_port("h-text");
  Headers text{{"Content-Type", "Text/Plain; charset=utf-8"}};
  // Blank lines are skipped, CR LF ends a line too, a JSON-looking line stays text, and
  // bytes that are not UTF-8 are kept exactly in _raw_b64.
  HttpResult r = post(port, "/", "first line\r\n\n   \n{\"a\":1}\nbad \xff byte\nlast", text);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body).at("accepted").as_int64(), 4);
  Headers gz = text;
  gz["Content-Encoding"] = "gzip";
  r = post(port, "/", compress(Encoding::gzip, "gzipped line\n"), gz);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body).at("accepted").as_int64(), 1);

  ASSERT_TRUE(test::wait_until([&] { return events_in(rx, "lines").size() == 5; }));
  auto got = events_in(rx, "lines");
  std::set<std::string> messages;
  for (auto& e : got) {
    messages.insert(s(e, "message"));
    EXPECT_EQ(s(e, "_source"), "h-text");
    EXPECT_NE(s(e, "_time"), "<absent>");
    EXPECT_EQ(e.contains("a"), false);  // text, not parsed as JSON
  }
  EXPECT_EQ(messages, (std::set<std::string>{"first line", "{\"a\":1}", "bad \xEF\xBF\xBD byte", "last",
                                             "gzipped line"}));
  const Event* bad = find_message(got, "bad \xEF\xBF\xBD byte");
  ASSERT_NE(bad, nullptr);
  EXPECT_EQ(s(*bad, "_raw_b64"), base64("bad \xff byte"));
  EXPECT_EQ(s(*find_message(got, "last"), "_raw_b64"), "<absent>");
  p->stop();
}

TEST(Proxy, HttpSourceMaxEventsRefusesTheWholeBody) {
  test::TempDir dir;
  test::RecordingReceiver rx;
  auto p = make_proxy(common_yaml(rx.url(), dir.str()) +
                      "  sources:\n"
                      "    - type: http\n      name: h-max\n      listen: 127.0.0.1:0\n      dataset: capped\n"
                      "      max_events: 3\n");
  p->start();
  const uint16_t port = p->source_port("h-max");
  const auto too_many = [] {
    return test::metric("bf_proxy_rejected_total", {{"source", "h-max"}, {"reason", "too_many_events"}});
  };
  const int64_t too_many0 = too_many();
  // Four events as NDJSON, as one array, and as text lines: each refused whole.
  const std::vector<std::pair<std::string, Headers>> bodies = {
      {"{\"message\":\"n1\"}\n{\"message\":\"n2\"}\n{\"message\":\"n3\"}\n{\"message\":\"n4\"}\n", {}},
      {"[{\"message\":\"a1\"},{\"message\":\"a2\"},{\"message\":\"a3\"},{\"message\":\"a4\"}]", {}},
      {"t1\nt2\nt3\nt4\n", {{"Content-Type", "text/plain"}}},
  };
  for (const auto& [body, headers] : bodies) {
    HttpResult r = post(port, "/", body, headers);
    EXPECT_EQ(r.status, 413) << body;
    const json::value v = json::parse(r.body);
    EXPECT_EQ(v.at("reason").as_string(), "too_many_events") << r.body;
    EXPECT_NE(std::string(v.at("error").as_string()).find("max_events"), std::string::npos) << r.body;
  }
  EXPECT_EQ(too_many() - too_many0, 3);
  // Exactly max_events is fine; it is the only thing that arrives.
  HttpResult r = post(port, "/", "ok1\nok2\n\nok3\n", {{"Content-Type", "text/plain"}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body).at("accepted").as_int64(), 3);
  ASSERT_TRUE(test::wait_until([&] { return events_in(rx, "capped").size() == 3; }));
  std::this_thread::sleep_for(200ms);
  std::set<std::string> messages;
  for (auto& e : events_in(rx, "capped")) messages.insert(s(e, "message"));
  EXPECT_EQ(messages, (std::set<std::string>{"ok1", "ok2", "ok3"}));
  p->stop();
}

TEST(Proxy, HttpAnswers503WhenSpoolIsFull) {
  test::TempDir dir;
  std::string yaml = common_yaml("http://127.0.0.1:" + std::to_string(test::dead_port()), dir.str());
  yaml.replace(yaml.find("  forward_concurrency"), 0, "    max_bytes: 100\n");  // spool.max_bytes
  yaml += "  sources:\n    - type: http\n      name: h-full\n      listen: 127.0.0.1:0\n";
  auto p = make_proxy(yaml);
  p->start();
  std::string body;
  for (int i = 0; i < 50; ++i) body += "{\"message\":\"filler " + std::to_string(i) + "\"}\n";
  const int64_t full0 = test::metric("bf_proxy_rejected_total", {{"source", "h-full"}, {"reason", "spool_full"}});
  HttpResult r = post(p->source_port("h-full"), "/", body);
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_EQ(test::metric("bf_proxy_rejected_total", {{"source", "h-full"}, {"reason", "spool_full"}}) - full0, 1);
  p->stop();
}

TEST(Proxy, SpoolSurvivesRestart) {
  test::TempDir dir;
  const std::string spool = (dir.path() / "spool").string();
  std::set<std::string> spooled_ids;
  {
    // Receiver down: everything stays in the spool.
    auto p = make_proxy(common_yaml("http://127.0.0.1:" + std::to_string(test::dead_port()), spool) +
                        "  sources:\n"
                        "    - type: http\n      name: r-http\n      listen: 127.0.0.1:0\n      dataset: web\n"
                        "    - type: syslog_udp\n      name: r-udp\n      listen: 127.0.0.1:0\n");
    const int64_t udp0 = test::metric("bf_proxy_events_total", {{"source", "r-udp"}});
    p->start();
    HttpResult r = post(p->source_port("r-http"), "/", "{\"message\":\"durable\"}");
    ASSERT_EQ(r.status, 200) << r.body;
    test::send_udp(p->source_port("r-udp"), "<13>1 - h a - - - buffered");
    ASSERT_TRUE(test::wait_until([&] { return test::metric("bf_proxy_events_total", {{"source", "r-udp"}}) - udp0 == 1; }));
    p->stop();  // flushes the syslog batch into the spool
    for (auto& e : std::filesystem::directory_iterator(spool))
      if (e.path().extension() == ".batch") spooled_ids.insert(e.path().stem().string());
    ASSERT_EQ(spooled_ids.size(), 2u);
  }
  test::RecordingReceiver rx;
  auto p = make_proxy(common_yaml(rx.url(), spool));
  p->start();
  ASSERT_TRUE(test::wait_until([&] { return rx.accepted().size() == 2; }));
  std::set<std::string> sent_ids;
  std::set<std::string> messages;
  for (auto& r : rx.accepted()) {
    sent_ids.insert(r.batch_id);
    for (auto& e : r.events) messages.insert(s(e, "message"));
  }
  EXPECT_EQ(sent_ids, spooled_ids);
  EXPECT_EQ(messages, (std::set<std::string>{"durable", "buffered"}));
  EXPECT_EQ(events_in(rx, "web").size(), 1u);
  EXPECT_EQ(events_in(rx, "syslog").size(), 1u);
  ASSERT_TRUE(test::wait_until([&] { return test::count_files(spool, ".batch") == 0; }));
  p->stop();
}

TEST(ProxyConfig, ReceiverUrlsFsyncAndPauseKeys) {
  test::TempDir dir;
  const std::string spool = "  spool:\n    dir: " + dir.str() + "\n";
  auto parse = [&](const std::string& receiver, const std::string& extra = "") {
    ConfigNode root = ConfigNode::parse("proxy:\n  receiver:\n    ingest_key: k\n" + receiver + spool + extra, "t.yaml");
    ConfigNode section = root.child("proxy");
    ProxyOptions o = parse_proxy_options(section);
    section.check_unknown();
    return o;
  };
  auto error = [&](const std::string& receiver, const std::string& extra = "") -> std::string {
    try {
      parse(receiver, extra);
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "<no ConfigError>";
  };
  ProxyOptions o = parse("    url: http://a:1\n");
  EXPECT_EQ(o.receiver_urls, (std::vector<std::string>{"http://a:1"}));
  EXPECT_FALSE(o.spool_fsync_interval_mode);                     // `always` by default
  EXPECT_EQ(o.permanent_error_retry, std::chrono::minutes(1));  // default 1m
  o = parse("    urls: [http://a:1, https://b:2]\n",
            "    fsync: interval\n    fsync_interval: 50ms\n  permanent_error_retry: 5s\n");
  EXPECT_EQ(o.receiver_urls, (std::vector<std::string>{"http://a:1", "https://b:2"}));
  EXPECT_TRUE(o.spool_fsync_interval_mode);
  EXPECT_EQ(o.spool_fsync_interval, 50ms);
  EXPECT_EQ(o.permanent_error_retry, 5000ms);

  std::string err = error("    url: http://a:1\n    urls: [http://b:1]\n");
  EXPECT_NE(err.find("urls"), std::string::npos) << err;
  EXPECT_NE(err.find("not both"), std::string::npos) << err;
  err = error("    urls: [http://a:1, ftp://b:1]\n");
  EXPECT_NE(err.find("ftp://b:1"), std::string::npos) << err;
  err = error("    urls: [http://a:1, http://a:1]\n");
  EXPECT_NE(err.find("twice"), std::string::npos) << err;
  err = error("    urls: []\n");
  EXPECT_NE(err.find("at least one"), std::string::npos) << err;
  err = error("    url: http://a:1\n", "    fsync: sometimes\n");
  EXPECT_NE(err.find("fsync"), std::string::npos) << err;
  EXPECT_NE(err.find("sometimes"), std::string::npos) << err;
  err = error("    url: http://a:1\n", "    fsync_interval: 0s\n");
  EXPECT_NE(err.find("fsync_interval"), std::string::npos) << err;
  err = error("    url: http://a:1\n", "  permanent_error_retry: 0s\n");
  EXPECT_NE(err.find("permanent_error_retry"), std::string::npos) << err;
}

// A TCP sender on its own thread, counting the bytes the kernel took from it.
struct TcpSender {
  int fd = -1;
  std::atomic<size_t> sent{0};
  size_t total = 0;
  std::atomic<bool> done{false};
  std::thread thread;

  TcpSender(uint16_t port, std::string data) : total(data.size()) {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    int small = 16 * 1024;
    ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) throw std::runtime_error("connect failed");
    thread = std::thread([this, data = std::move(data)] {
      while (sent < data.size()) {
        const ssize_t n = ::send(fd, data.data() + sent, std::min<size_t>(4096, data.size() - sent), MSG_NOSIGNAL);
        if (n <= 0) break;
        sent += size_t(n);
      }
      ::shutdown(fd, SHUT_WR);
      done = true;
    });
  }
  ~TcpSender() {
    ::shutdown(fd, SHUT_RDWR);
    if (thread.joinable()) thread.join();
    ::close(fd);
  }
  // True when no byte was taken for `quiet` while data is left.
  bool stalled(std::chrono::milliseconds quiet = 300ms) {
    const size_t before = sent;
    std::this_thread::sleep_for(quiet);
    return sent == before && sent < total;
  }
};

std::string numbered_syslog_lines(int n) {
  std::string out;
  const std::string pad(80, 'p');
  for (int i = 0; i < n; ++i) out += "<13>1 2024-05-01T10:00:00Z host app - - - n=" + std::to_string(i) + " " + pad + "\n";
  return out;
}

// The numbers n=<i> of the stored events (duplicates would show as a count mismatch).
std::vector<int> stored_numbers(const test::ScriptedReceiver& rx) {
  std::vector<int> out;
  for (auto& s : rx.seen()) {
    if (s.status != 200) continue;
    for (auto& e : s.decoded) {
      const std::string m = std::string(e.at("message").as_string());
      out.push_back(std::stoi(m.substr(2)));
    }
  }
  return out;
}

TEST(Proxy, FullSpoolBlocksTcpSendersAndLosesNothing) {
  test::TempDir dir;
  std::atomic<bool> up{false};
  test::ScriptedReceiver rx([&](const auto&) { return up ? 200 : 503; });
  std::string yaml = common_yaml(rx.url(), dir.str());
  yaml.replace(yaml.find("    max_events: 1000"), std::string("    max_events: 1000").size(), "    max_events: 100");
  yaml.replace(yaml.find("  forward_concurrency"), 0, "    max_bytes: 16KiB\n");  // spool.max_bytes
  yaml += "  sources:\n    - type: syslog_tcp\n      name: bp-tcp\n      listen: 127.0.0.1:0\n      framing: newline\n";
  auto p = make_proxy(yaml);
  const int64_t dropped0 = test::metric("bf_proxy_dropped_total", {{"reason", "spool_full"}});
  const int64_t waits0 = test::metric("bf_proxy_backpressure_waits_total");
  p->start();
  constexpr int kLines = 20000;  // ~2.4 MB: far more than the spool and the socket buffers
  TcpSender sender(p->source_port("bp-tcp"), numbered_syslog_lines(kLines));

  // The spool fills, the source stops reading, and the sender's send() stalls.
  ASSERT_TRUE(test::wait_until([&] { return test::metric("bf_proxy_backpressure_blocked") >= 1; }));
  ASSERT_TRUE(test::wait_until([&] { return sender.stalled(); }, 15000ms)) << sender.sent << " of " << sender.total;
  EXPECT_LT(sender.sent.load(), sender.total);
  EXPECT_FALSE(sender.done);
  EXPECT_GE(test::metric("bf_proxy_backpressure_waits_total") - waits0, 1);
  EXPECT_EQ(test::metric("bf_proxy_dropped_total", {{"reason", "spool_full"}}) - dropped0, 0);
  EXPECT_LE(test::metric("bf_proxy_spool_bytes"), 16 * 1024);
  EXPECT_TRUE(rx.stored().empty());

  // The receiver comes back: the spool drains, reading resumes, everything arrives once.
  up = true;
  ASSERT_TRUE(test::wait_until([&] { return sender.done.load(); }, 30000ms)) << sender.sent << " of " << sender.total;
  ASSERT_TRUE(test::wait_until([&] { return rx.stored_events() >= size_t(kLines); }, 30000ms)) << rx.stored_events();
  std::vector<int> got = stored_numbers(rx);
  EXPECT_EQ(got.size(), size_t(kLines));
  std::set<int> unique(got.begin(), got.end());
  EXPECT_EQ(unique.size(), size_t(kLines));
  EXPECT_EQ(*unique.begin(), 0);
  EXPECT_EQ(*unique.rbegin(), kLines - 1);
  EXPECT_EQ(test::metric("bf_proxy_dropped_total", {{"reason", "spool_full"}}) - dropped0, 0);
  EXPECT_EQ(test::metric("bf_proxy_backpressure_blocked"), 0);
  p->stop();
}

TEST(Proxy, StopWhileTcpIsBlockedKeepsWhatWasRead) {
  test::TempDir dir;
  const std::string spool = (dir.path() / "spool").string();
  std::string yaml = common_yaml("http://127.0.0.1:" + std::to_string(test::dead_port()), spool);
  yaml.replace(yaml.find("    max_events: 1000"), std::string("    max_events: 1000").size(), "    max_events: 100");
  yaml.replace(yaml.find("  forward_concurrency"), 0, "    max_bytes: 8KiB\n");
  yaml += "  sources:\n    - type: syslog_tcp\n      name: bp-stop\n      listen: 127.0.0.1:0\n      framing: newline\n";
  auto p = make_proxy(yaml);
  const int64_t dropped0 = test::metric("bf_proxy_dropped_total", {{"reason", "spool_full"}});
  const int64_t tcp0 = test::metric("bf_proxy_events_total", {{"source", "bp-stop"}});
  p->start();
  TcpSender sender(p->source_port("bp-stop"), numbered_syslog_lines(5000));
  ASSERT_TRUE(test::wait_until([&] { return test::metric("bf_proxy_backpressure_blocked") >= 1; }));
  const auto t0 = std::chrono::steady_clock::now();
  p->stop();  // must not hang on the blocked source
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
  EXPECT_EQ(test::metric("bf_proxy_dropped_total", {{"reason", "spool_full"}}) - dropped0, 0);
  // Every event the source read is in the spool (stored over the limit at shutdown).
  size_t spooled_events = 0;
  Spool s(spool, 0);
  for (auto& e : s.list()) spooled_events += decode_batch(s.read(e.id).data).size();
  EXPECT_EQ(int64_t(spooled_events), test::metric("bf_proxy_events_total", {{"source", "bp-stop"}}) - tcp0);
  EXPECT_GT(spooled_events, 0u);
}

TEST(Proxy, UdpDropsAndCountsWhenSpoolIsFull) {
  test::TempDir dir;
  std::string yaml = common_yaml("http://127.0.0.1:" + std::to_string(test::dead_port()), dir.str());
  yaml.replace(yaml.find("    max_events: 1000"), std::string("    max_events: 1000").size(), "    max_events: 1");
  yaml.replace(yaml.find("  forward_concurrency"), 0, "    max_bytes: 2KiB\n");
  yaml += "  sources:\n    - type: syslog_udp\n      name: full-udp\n      listen: 127.0.0.1:0\n";
  auto p = make_proxy(yaml);
  const int64_t dropped0 = test::metric("bf_proxy_dropped_total", {{"reason", "spool_full"}});
  const Labels spool_full{{"intentional", "false"}, {"reason", "spool_full"}};
  const int64_t discarded0 = test::contract_count("discarded_events", "sink", "forwarder", "receiver", spool_full);
  const int64_t spooled0 = test::metric("bf_proxy_batches_spooled_total");
  const int64_t events0 = test::metric("bf_proxy_events_total", {{"source", "full-udp"}});
  p->start();
  const uint16_t port = p->source_port("full-udp");
  for (int i = 0; i < 100; ++i) test::send_udp(port, "<13>1 - host app - - - udp " + std::to_string(i));
  // The UDP thread never waits: every datagram is handled ...
  ASSERT_TRUE(test::wait_until([&] { return test::metric("bf_proxy_events_total", {{"source", "full-udp"}}) - events0 == 100; }));
  // ... and each one-event batch is either in the spool or counted as dropped.
  ASSERT_TRUE(test::wait_until([&] {
    return (test::metric("bf_proxy_batches_spooled_total") - spooled0) +
               (test::metric("bf_proxy_dropped_total", {{"reason", "spool_full"}}) - dropped0) ==
           100;
  }));
  EXPECT_GT(test::metric("bf_proxy_dropped_total", {{"reason", "spool_full"}}) - dropped0, 50);
  // The proxy's sink reports the same drops as unintentional discards (the contract).
  EXPECT_EQ(test::contract_count("discarded_events", "sink", "forwarder", "receiver", spool_full) - discarded0,
            test::metric("bf_proxy_dropped_total", {{"reason", "spool_full"}}) - dropped0);
  EXPECT_GT(test::metric("bf_proxy_batches_spooled_total") - spooled0, 0);
  EXPECT_EQ(test::metric("bf_proxy_backpressure_blocked"), 0);
  EXPECT_EQ(int64_t(test::count_files(dir.path(), ".batch")), test::metric("bf_proxy_batches_spooled_total") - spooled0);
  p->stop();
}

TEST(Proxy, FsyncIntervalModeDeliversEverything) {
  test::TempDir dir;
  const std::string spool = (dir.path() / "spool").string();
  auto with_interval = [](std::string yaml) {
    yaml.replace(yaml.find("  forward_concurrency"), 0, "    fsync: interval\n    fsync_interval: 50ms\n");
    return yaml;
  };
  const std::string sources =
      "  sources:\n"
      "    - type: syslog_udp\n      name: fs-udp\n      listen: 127.0.0.1:0\n      dataset: fs-udp\n"
      "    - type: syslog_tcp\n      name: fs-tcp\n      listen: 127.0.0.1:0\n      dataset: fs-tcp\n"
      "    - type: http\n      name: fs-http\n      listen: 127.0.0.1:0\n      dataset: fs-http\n";
  // 1. Receiver down: UDP batches (group-committed) wait in the spool across a restart.
  {
    auto p = make_proxy(with_interval(common_yaml("http://127.0.0.1:" + std::to_string(test::dead_port()), spool)) +
                        sources);
    const int64_t udp0 = test::metric("bf_proxy_events_total", {{"source", "fs-udp"}});
    p->start();
    for (int i = 0; i < 50; ++i) test::send_udp(p->source_port("fs-udp"), "<13>1 - h a - - - before " + std::to_string(i));
    ASSERT_TRUE(test::wait_until([&] { return test::metric("bf_proxy_events_total", {{"source", "fs-udp"}}) - udp0 == 50; }));
    p->stop();
  }
  // 2. Receiver up: the leftovers and new UDP, TCP and HTTP events all arrive.
  test::RecordingReceiver rx;
  auto p = make_proxy(with_interval(common_yaml(rx.url(), spool)) + sources);
  p->start();
  for (int i = 0; i < 200; ++i) {
    test::send_udp(p->source_port("fs-udp"), "<13>1 - h a - - - after " + std::to_string(i));
    if (i % 50 == 49) std::this_thread::sleep_for(5ms);
  }
  std::string tcp;
  for (int i = 0; i < 30; ++i) tcp += "<13>1 - h a - - - tcp " + std::to_string(i) + "\n";
  test::send_tcp(p->source_port("fs-tcp"), tcp);
  HttpResult r = post(p->source_port("fs-http"), "/", "{\"message\":\"h1\"}\n{\"message\":\"h2\"}\n");
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_TRUE(test::wait_until([&] {
    return events_in(rx, "fs-udp").size() >= 250 && events_in(rx, "fs-tcp").size() >= 30 &&
           events_in(rx, "fs-http").size() >= 2;
  })) << events_in(rx, "fs-udp").size();
  std::set<std::string> udp_messages;
  for (auto& e : events_in(rx, "fs-udp")) udp_messages.insert(s(e, "message"));
  EXPECT_EQ(udp_messages.size(), 250u);
  EXPECT_EQ(events_in(rx, "fs-udp").size(), 250u);
  EXPECT_TRUE(udp_messages.count("before 0") && udp_messages.count("before 49") && udp_messages.count("after 199"));
  EXPECT_EQ(events_in(rx, "fs-tcp").size(), 30u);
  EXPECT_EQ(events_in(rx, "fs-http").size(), 2u);
  ASSERT_TRUE(test::wait_until([&] { return test::count_files(spool, ".batch") == 0; }));
  p->stop();
}

// --- the component contract (docs/metrics.md) --------------------------------------

std::string contract_source_yaml(const std::string& receiver_url, const std::string& spool_dir, const std::string& type,
                                 const std::string& name, const std::string& extra = "") {
  return common_yaml(receiver_url, spool_dir) + "  sources:\n    - type: " + type + "\n      name: " + name +
         "\n      listen: 127.0.0.1:0\n      tenant: acme\n      dataset: " + name + "\n" + extra;
}

TEST(ProxyContract, SyslogUdpSourceCountsEventsBytesParseErrorsAndBlankDatagrams) {
  test::TempDir dir;
  test::RecordingReceiver rx;
  auto p = make_proxy(contract_source_yaml(rx.url(), dir.str(), "syslog_udp", "contract-udp"));
  // Registered at 0 before the first event.
  EXPECT_TRUE(metrics().sum("bf_component_sent_events_total", {{"component_id", "contract-udp"}}).has_value());
  p->start();
  const std::vector<std::string> datagrams{"<34>1 2024-05-01T10:00:00Z host app - - - one",
                                           "<13>May  1 10:00:01 host cron[5]: two",
                                           "<x> not syslog at all",  // kept with _parse_error: an error, not a discard
                                           "\r\n"};             // blank: nothing to keep, a discard
  int64_t bytes = 0;
  for (const auto& d : datagrams) {
    test::send_udp(p->source_port("contract-udp"), d);
    bytes += int64_t(d.size());
  }
  auto counts = [] { return test::ContractCounts::of("source", "syslog_udp", "contract-udp"); };
  ASSERT_TRUE(test::wait_until([&] { return events_in(rx, "contract-udp").size() == 3 && counts().received_events == 4; }))
      << counts().received_events;
  p->stop();
  const auto c = counts();
  EXPECT_EQ(c.received_bytes, bytes);
  EXPECT_EQ(c.sent_events, 3);
  EXPECT_GT(c.sent_bytes, c.received_bytes);  // the events' NDJSON, _raw included
  EXPECT_EQ(c.intentional, 0);
  EXPECT_EQ(c.unintentional, 1);
  EXPECT_EQ(test::contract_count("discarded_events", "source", "syslog_udp", "contract-udp", {{"reason", "empty"}}), 1);
  EXPECT_EQ(test::contract_count("errors", "source", "syslog_udp", "contract-udp",
                                 {{"stage", "parse"}, {"error_type", "unparsed"}}),
            1);
  EXPECT_EQ(c.errors, 1);
  test::expect_component_contract("source", "syslog_udp", {.errors = true, .unintentional_discards = true}, "contract-udp");
}

TEST(ProxyContract, SyslogTcpSourceCountsEventsBytesParseErrorsAndBlankFrames) {
  test::TempDir dir;
  test::RecordingReceiver rx;
  auto p = make_proxy(contract_source_yaml(rx.url(), dir.str(), "syslog_tcp", "contract-tcp"));
  p->start();
  const std::string line = "<13>1 2024-05-01T10:00:02Z tcphost app - - - line framed";
  const std::string garbage = "<garbage> line";
  const std::string octet = "<14>1 2024-05-01T10:00:03Z tcphost app - - - octet counted";
  // One framing per connection (RFC 6587): newline-framed lines on one, octet-counted
  // frames on another; "2 \r\n" is an octet-counted frame holding only a line end — a
  // blank message.
  test::send_tcp(p->source_port("contract-tcp"), line + "\n" + garbage + "\n");
  test::send_tcp(p->source_port("contract-tcp"), "2 \r\n" + std::to_string(octet.size()) + " " + octet);
  auto counts = [] { return test::ContractCounts::of("source", "syslog_tcp", "contract-tcp"); };
  ASSERT_TRUE(test::wait_until([&] { return events_in(rx, "contract-tcp").size() == 3 && counts().received_events == 4; }))
      << counts().received_events;
  p->stop();
  const auto c = counts();
  EXPECT_EQ(c.received_bytes, int64_t(line.size() + garbage.size() + 2 + octet.size()));
  EXPECT_EQ(c.sent_events, 3);
  EXPECT_GT(c.sent_bytes, c.received_bytes);
  EXPECT_EQ(c.unintentional, 1);
  EXPECT_EQ(c.intentional, 0);
  EXPECT_EQ(test::contract_count("errors", "source", "syslog_tcp", "contract-tcp", {{"stage", "parse"}}), 1);
  test::expect_component_contract("source", "syslog_tcp", {.errors = true, .unintentional_discards = true}, "contract-tcp");
}

TEST(ProxyContract, HttpSourceCountsAcceptedEventsAndRefusedRequestsAsErrors) {
  test::TempDir dir;
  test::RecordingReceiver rx;
  auto p = make_proxy(contract_source_yaml(rx.url(), dir.str(), "http", "contract-http", "      token: s3cret\n"));
  p->start();
  const uint16_t port = p->source_port("contract-http");
  const Headers auth{{"Authorization", "Bearer s3cret"}};
  const std::vector<std::pair<std::string, Headers>> requests{
      {"{\"message\":\"no token\"}", {}},                          // 401
      {"{\"message\":\"ok\"}\n{\"message\": broken}\n", auth},       // 400, nothing accepted
      {"{\"message\":\"a\"}\n{\"message\":\"b\"}\n", auth},          // 2 events
      {"[{\"message\":\"c\"}]", auth}};                              // 1 event
  const std::vector<int> expected{401, 400, 200, 200};
  int64_t bytes = 0;
  for (size_t i = 0; i < requests.size(); ++i) {
    EXPECT_EQ(post(port, "/", requests[i].first, requests[i].second).status, expected[i]);
    bytes += int64_t(requests[i].first.size());
  }
  ASSERT_TRUE(test::wait_until([&] { return events_in(rx, "contract-http").size() == 3; }));
  p->stop();
  const auto c = test::ContractCounts::of("source", "http", "contract-http");
  EXPECT_EQ(c.received_events, 3);  // a refused request's events are the client's to resend
  EXPECT_EQ(c.received_bytes, bytes);
  EXPECT_EQ(c.sent_events, 3);
  EXPECT_GT(c.sent_bytes, 0);
  EXPECT_EQ(c.errors, 2);
  EXPECT_EQ(test::contract_count("errors", "source", "http", "contract-http",
                                 {{"stage", "auth"}, {"error_type", "unauthorized"}}),
            1);
  EXPECT_EQ(test::contract_count("errors", "source", "http", "contract-http",
                                 {{"stage", "decode"}, {"error_type", "bad_json"}}),
            1);
  EXPECT_EQ(c.unintentional + c.intentional, 0);
  test::expect_component_contract("source", "http", {.errors = true}, "contract-http");
}

TEST(SourceRegistry, ListsBuiltIns) {
  std::set<std::string> types;
  for (auto& f : source_factories()) {
    types.insert(f.type);
    EXPECT_FALSE(f.description.empty());
    EXPECT_EQ(find_source_factory(f.type), &f);
  }
  EXPECT_EQ(types, (std::set<std::string>{"syslog_udp", "syslog_tcp", "http", "sflow", "netflow", "ipfix", "udp", "tcp"}));
  EXPECT_EQ(find_source_factory("kafka"), nullptr);
}

}  // namespace
}  // namespace bf
