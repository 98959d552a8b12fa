#include "proxy/proxy.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <set>

#include "common/config.h"
#include "common/time.h"
#include "common/ulid.h"
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
  test::send_udp(udp, "not syslog at all");
  const std::string octet = "<14>1 2024-05-01T10:00:03Z tcphost app - - - octet counted";
  test::send_tcp(tcp, "<13>1 2024-05-01T10:00:02Z tcphost app - - - line framed\n" +
                          std::to_string(octet.size()) + " " + octet);
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
  e = find_message(udp_events, "not syslog at all");
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

TEST(SourceRegistry, ListsBuiltIns) {
  std::set<std::string> types;
  for (auto& f : source_factories()) {
    types.insert(f.type);
    EXPECT_FALSE(f.description.empty());
    EXPECT_EQ(find_source_factory(f.type), &f);
  }
  EXPECT_EQ(types, (std::set<std::string>{"syslog_udp", "syslog_tcp", "http"}));
  EXPECT_EQ(find_source_factory("kafka"), nullptr);
}

}  // namespace
}  // namespace bf
