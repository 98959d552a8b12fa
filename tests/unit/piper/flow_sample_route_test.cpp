// The community_id, sample and route steps (issue 8), through Pipeline::compile + run
// as the piper uses them. Community IDs are checked against Wireshark's implementation
// (tshark reading a pcap that text2pcap builds), not against values computed here.
#include <gtest/gtest.h>
#include <xxhash.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <atomic>
#include <thread>

#include "common/metrics.h"
#include "common/ulid.h"
#include "fixtures/process.h"
#include "piper/transform.h"

using namespace bf;
namespace json = boost::json;
namespace fs = std::filesystem;

namespace {
Pipeline compile(const std::string& steps, const PipelineContext* context = nullptr) {
  return Pipeline::compile(json::parse(steps).as_array(), "dataset a/t/d", context);
}
Event ev(const std::string& text) { return json::parse(text).as_object(); }
std::string compile_error(const std::string& steps, const PipelineContext* context = nullptr) {
  try {
    compile(steps, context);
  } catch (const PipelineError& e) {
    return e.what();
  }
  return "(compiled)";
}

// ---- community_id ----------------------------------------------------------------

struct Flow {
  std::string src, dst;
  int proto;
  int sport, dport;  // ICMP: type and code
  int seed = 0;
};

// Wireshark's Community ID of one packet of the flow: text2pcap wraps a hex dump in
// dummy IP and transport headers, tshark's communityid post-dissector hashes it.
std::string tshark_community_id(const Flow& f) {
  const fs::path dir = fs::temp_directory_path() / ("bf-cid-" + new_ulid());
  fs::create_directories(dir);
  std::string hex = "0000  61 62 63\n";  // payload for TCP/UDP/SCTP and other protocols
  std::string headers;
  const bool v6 = f.src.find(':') != std::string::npos;
  const std::string ip = (v6 ? "-6 " : "-4 ") + f.src + "," + f.dst;
  if (f.proto == 6) {
    headers = "-T " + std::to_string(f.sport) + "," + std::to_string(f.dport);
  } else if (f.proto == 17) {
    headers = "-u " + std::to_string(f.sport) + "," + std::to_string(f.dport);
  } else if (f.proto == 132) {
    headers = "-s " + std::to_string(f.sport) + "," + std::to_string(f.dport) + ",7";
  } else {
    headers = "-i " + std::to_string(f.proto);
    if (f.proto == 1 || f.proto == 58) {
      // type, code, checksum, id, sequence and 16 bytes of data: a shorter message (a
      // timestamp request needs 20 bytes) is hashed by Wireshark as if it had no ports.
      char buf[128];
      std::snprintf(buf, sizeof buf, "0000  %02x %02x 00 00 00 01 00 01 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00\n",
                    f.sport, f.dport);
      hex = buf;
    }
  }
  std::ofstream(dir / "in.txt") << hex;
  auto [rc, out] = test::run_command("(text2pcap -q " + ip + " " + headers + " " + (dir / "in.txt").string() + " " +
                                     (dir / "p.pcap").string() + " >/dev/null 2>&1 && tshark -r " + (dir / "p.pcap").string() +
                                     " --enable-protocol communityid -o communityid.seed:" + std::to_string(f.seed) +
                                     " -T fields -e communityid 2>/dev/null)");
  fs::remove_all(dir);
  EXPECT_EQ(rc, 0) << out;
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

std::string our_community_id(const Flow& f) {
  auto p = compile(R"([{"community_id": {"source_ip": "s", "destination_ip": "d", "source_port": "sp",
                       "destination_port": "dp", "protocol": "p", "seed": )" + std::to_string(f.seed) + "}}]");
  json::object e{{"s", f.src}, {"d", f.dst}, {"sp", f.sport}, {"dp", f.dport}, {"p", f.proto}};
  auto out = p.run({e});
  if (out.events.size() != 1) return "(failed)";
  return std::string(out.events[0].at("network").at("community_id").as_string());
}

}  // namespace

TEST(CommunityId, MatchesWiresharkInBothDirectionsForEveryProtocolKind) {
  if (test::run_command("command -v tshark && command -v text2pcap").first != 0) GTEST_SKIP() << "tshark not installed";
  const std::vector<Flow> flows{
      {"10.0.0.1", "10.0.0.2", 6, 1234, 80},
      {"192.168.1.200", "10.1.2.3", 6, 443, 55000},
      {"10.0.0.5", "10.0.0.5", 17, 5353, 53},  // same address: the ports decide the order
      {"2001:db8::1", "fe80::2", 17, 53, 5353, 1},
      {"2001:db8::9", "2001:db8::1", 132, 3868, 2905, 7},
      {"10.0.0.9", "10.0.0.1", 1, 8, 0},   // echo request
      {"10.0.0.1", "10.0.0.9", 1, 0, 0},   // its reply
      {"10.0.0.9", "10.0.0.1", 1, 3, 1},   // destination unreachable: one-way, not reordered
      {"10.0.0.9", "10.0.0.1", 1, 13, 0},  // timestamp
      {"fe80::9", "fe80::1", 58, 128, 0},  // ICMPv6 echo
      {"fe80::9", "fe80::1", 58, 135, 0},  // neighbor solicitation
      {"fe80::9", "fe80::1", 58, 1, 4},    // unreachable: one-way
      {"10.0.0.9", "10.0.0.1", 47, 0, 0},  // GRE: no ports
  };
  for (const Flow& f : flows) {
    const std::string expected = tshark_community_id(f);
    ASSERT_EQ(expected.rfind("1:", 0), 0u) << "tshark gave no id for " << f.src << " " << f.proto << ": " << expected;
    EXPECT_EQ(our_community_id(f), expected) << f.src << " -> " << f.dst << " proto " << f.proto;
  }
  // Both directions of a TCP flow hash alike; an echo request and its reply too.
  EXPECT_EQ(our_community_id({"10.0.0.2", "10.0.0.1", 6, 80, 1234}), our_community_id({"10.0.0.1", "10.0.0.2", 6, 1234, 80}));
  EXPECT_EQ(our_community_id({"10.0.0.9", "10.0.0.1", 1, 8, 0}), our_community_id({"10.0.0.1", "10.0.0.9", 1, 0, 0}));
  EXPECT_NE(our_community_id({"10.0.0.1", "10.0.0.2", 6, 1234, 80, 1}), our_community_id({"10.0.0.1", "10.0.0.2", 6, 1234, 80}));
}

TEST(CommunityId, NamesAndDefaultsAndBadFlows) {
  // ECS field names by default, protocol names accepted.
  auto p = compile(R"([{"community_id": {}}])");
  auto out = p.run({ev(R"({"source": {"ip": "10.0.0.1", "port": 1234}, "destination": {"ip": "10.0.0.2", "port": 80},
                          "network": {"transport": "TCP"}})"),
                    ev(R"({"message": "not a flow"})"),
                    ev(R"({"source": {"ip": "10.0.0.1", "port": 1}, "destination": {"ip": "nope", "port": 2}, "network": {"transport": "tcp"}})"),
                    ev(R"({"source": {"ip": "10.0.0.1", "port": 1}, "destination": {"ip": "::1", "port": 2}, "network": {"transport": "tcp"}})"),
                    ev(R"({"source": {"ip": "10.0.0.1"}, "destination": {"ip": "10.0.0.2"}, "network": {"transport": "udp"}})"),
                    ev(R"({"source": {"ip": "10.0.0.1", "port": 70000}, "destination": {"ip": "10.0.0.2", "port": 1}, "network": {"transport": 6}})"),
                    ev(R"({"source": {"ip": "10.0.0.1"}, "destination": {"ip": "10.0.0.2"}, "network": {"transport": "carrier-pigeon"}})")});
  ASSERT_EQ(out.events.size(), 2u);
  EXPECT_EQ(out.events[0].at("network").at("community_id").as_string(), our_community_id({"10.0.0.1", "10.0.0.2", 6, 1234, 80}));
  EXPECT_FALSE(out.events[1].contains("network"));  // skipped, not failed
  ASSERT_EQ(out.dead_letters.size(), 5u);
  EXPECT_EQ(out.dead_letters[0].at("_error"), "step 1 (community_id): field 'destination.ip' is not an IP address");
  EXPECT_EQ(out.dead_letters[1].at("_error"), "step 1 (community_id): source and destination are not both IPv4 or both IPv6");
  EXPECT_EQ(out.dead_letters[2].at("_error"), "step 1 (community_id): field 'source.port' is missing");
  EXPECT_EQ(out.dead_letters[3].at("_error"), "step 1 (community_id): field 'source.port' is not a port number (0-65535)");
  EXPECT_EQ(out.dead_letters[4].at("_error"),
            "step 1 (community_id): field 'network.transport' is not a protocol number (0-255) or name");
  EXPECT_EQ(compile_error(R"([{"community_id": {"seed": 65536}}])"),
            "dataset a/t/d: pipeline step 1 (community_id): option 'seed': must be between 0 and 65535");
}

// ---- sample ----------------------------------------------------------------------

TEST(Sample, RandomKeepsAboutOneInRateAndRecordsIt) {
  auto p = compile(R"([{"sample": {"rate": 10}}])");
  std::vector<Event> in(20000, ev(R"({"x": 1})"));
  auto out = p.run(in);
  EXPECT_GT(out.events.size(), 1600u);  // 2000 expected; a 1-in-10^9 chance to fail either bound
  EXPECT_LT(out.events.size(), 2400u);
  EXPECT_EQ(out.events.size() + out.dropped, in.size());
  for (const auto& e : out.events) EXPECT_EQ(e.at("_sample_rate"), 10);
}

TEST(Sample, ByKeyKeepsOrDropsEverySessionWholeAndTheSameInEveryRun) {
  const std::string steps = R"([{"sample": {"rate": 4, "key": "session", "rate_field": "w"}}])";
  std::vector<Event> in;
  for (int i = 0; i < 4000; ++i) in.push_back(json::object{{"session", "s" + std::to_string(i % 200)}, {"i", i}});
  auto first = compile(steps).run(in);
  auto second = compile(steps).run(in);  // a separately compiled pipeline: another process
  ASSERT_EQ(first.events.size(), second.events.size());
  std::map<std::string, int> kept;
  for (size_t i = 0; i < first.events.size(); ++i) {
    EXPECT_EQ(first.events[i], second.events[i]);
    EXPECT_EQ(first.events[i].at("w"), 4);
    ++kept[std::string(first.events[i].at("session").as_string())];
  }
  // Decided by xxhash64 (seed 0) of the key's text, as documented: computed here independently.
  size_t expected_sessions = 0;
  for (int s = 0; s < 200; ++s) {
    const std::string k = "s" + std::to_string(s);
    const bool keep = XXH64(k.data(), k.size(), 0) % 4 == 0;
    expected_sessions += keep;
    EXPECT_EQ(kept.count(k) ? kept[k] : 0, keep ? 20 : 0) << k;
  }
  EXPECT_EQ(kept.size(), expected_sessions);
  EXPECT_GT(expected_sessions, 20u);
  // Another seed picks other sessions.
  auto reseeded = compile(R"([{"sample": {"rate": 4, "key": "session", "seed": 99}}])").run(in);
  EXPECT_NE(reseeded.events.size(), first.events.size());
}

TEST(Sample, SecondSampleMultipliesTheRecordedRate) {
  auto out = compile(R"([{"sample": {"rate": 2, "key": "k"}}, {"sample": {"rate": 3, "key": "k", "seed": 5}}])")
                 .run([] {
                   std::vector<Event> v;
                   for (int i = 0; i < 3000; ++i) v.push_back(json::object{{"k", i}});
                   return v;
                 }());
  ASSERT_FALSE(out.events.empty());
  for (const auto& e : out.events) EXPECT_EQ(e.at("_sample_rate"), 6);
}

TEST(Sample, DynamicSamplesFrequentKeysHarderKeepsRareOnesAndReweightsToTheTruth) {
  auto p = compile(R"([{"sample": {"rate": 20, "key": "status", "mode": "dynamic", "window_events": 10000}}])");
  // Each window: 9000 "200", 900 "404", 90 "500", 10 "503".
  std::map<std::string, int> sent;
  std::map<std::string, double> estimated;
  std::map<std::string, std::vector<int64_t>> rates;
  for (int window = 0; window < 6; ++window) {
    std::vector<Event> in;
    for (int i = 0; i < 10000; ++i) {
      std::string s = i % 1000 == 0 ? "503" : i % 100 == 1 ? "500" : i % 10 == 2 ? "404" : "200";
      in.push_back(json::object{{"status", s}});
    }
    auto out = p.run(in);
    if (window == 0) {
      EXPECT_EQ(out.events.size(), in.size());  // no history yet: everything is kept, rate 1
      continue;
    }
    for (const auto& e : in) ++sent[std::string(e.at("status").as_string())];
    for (const auto& e : out.events) {
      const std::string s(e.at("status").as_string());
      estimated[s] += static_cast<double>(e.at("_sample_rate").as_int64());
      rates[s].push_back(e.at("_sample_rate").as_int64());
    }
  }
  ASSERT_FALSE(rates["200"].empty());
  EXPECT_GT(rates["200"].front(), rates["404"].front());
  EXPECT_GE(rates["404"].front(), rates["500"].front());
  EXPECT_EQ(rates["503"].front(), 1);  // rare: every one kept
  EXPECT_EQ(estimated["503"], sent["503"]);
  for (const auto& [s, n] : sent) EXPECT_NEAR(estimated[s], n, n * 0.15) << s;
  // The kept fraction is near the goal of 1 in 20 (the rare keys, kept whole, push it up a little).
  double kept = 0;
  for (const auto& [s, r] : rates) kept += static_cast<double>(r.size());
  EXPECT_LT(kept, 50000 / 20 * 1.3);
  EXPECT_GT(kept, 50000 / 20 * 0.7);
}

TEST(Sample, DynamicKeyTableIsBoundedKeysBeyondItShareABucket) {
  // Two tracked keys; 500 distinct others share the overflow bucket, which is then
  // sampled as one busy key — and re-weighting still estimates their total.
  auto p = compile(R"([{"sample": {"rate": 10, "key": "user", "mode": "dynamic", "max_keys": 2, "window_events": 1000}}])");
  double estimated_other = 0;
  int sent_other = 0;
  size_t kept_other = 0;
  for (int window = 0; window < 20; ++window) {
    std::vector<Event> in;
    for (int i = 0; i < 1000; ++i) in.push_back(json::object{{"user", i < 2 ? "tracked" + std::to_string(i) : "u" + std::to_string(i % 500)}});
    auto out = p.run(in);
    if (window == 0) continue;
    sent_other += 998;
    for (const auto& e : out.events) {
      if (e.at("user").as_string().starts_with("u")) {
        estimated_other += static_cast<double>(e.at("_sample_rate").as_int64());
        ++kept_other;
      }
    }
  }
  EXPECT_LT(kept_other, static_cast<size_t>(sent_other / 4));  // sampled, not kept as 500 rare keys would be
  EXPECT_NEAR(estimated_other, sent_other, sent_other * 0.1);
}

TEST(Sample, DynamicSharedByThreadsCountsEveryEventAndReweights) {
  // One compiled step, four threads running batches through it at once (the piper's
  // batches of a dataset may overlap): the key table is locked per batch, so every
  // event is counted once — the re-weighted total matches what was sent, the bounded
  // table holds, and a key rare in every window is kept whole.
  auto p = compile(R"([{"sample": {"rate": 10, "key": "user", "mode": "dynamic", "max_keys": 8, "window_events": 2000}},
                       {"set": {"field": "after", "value": true}}])");
  constexpr int kThreads = 4, kBatches = 40, kPerBatch = 500;
  std::vector<double> estimated(kThreads);
  std::vector<size_t> accounted(kThreads), rare_kept(kThreads);
  std::vector<std::thread> threads;
  std::atomic<int> ready{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      ++ready;
      while (ready.load() < kThreads) std::this_thread::yield();  // all start together
      for (int b = 0; b < kBatches; ++b) {
        std::vector<Event> in;
        for (int i = 0; i < kPerBatch; ++i)  // 2 busy users, 40 others (beyond max_keys), 1 rare
          in.push_back(json::object{{"user", i == 0 ? "rare" : i % 3 ? "busy" + std::to_string(i % 2) : "u" + std::to_string(i % 40)}});
        auto out = p.run(std::move(in));
        accounted[t] += out.events.size() + out.dropped;
        for (const auto& e : out.events) {
          EXPECT_EQ(e.at("after"), true);
          if (b > 0) estimated[t] += static_cast<double>(e.at("_sample_rate").as_int64());
          if (e.at("user") == "rare") ++rare_kept[t];
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  double total = 0;
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(accounted[t], static_cast<size_t>(kBatches * kPerBatch));  // kept + dropped: none lost
    EXPECT_EQ(rare_kept[t], static_cast<size_t>(kBatches));
    total += estimated[t];
  }
  const double sent = kThreads * (kBatches - 1) * kPerBatch;
  EXPECT_NEAR(total, sent, sent * 0.1);
}

TEST(Sample, DropsAreCountedPerStepAndOptionsAreChecked) {
  auto p = compile(R"([{"sample": {"rate": 1000000}}])");
  p.count_as({{"tenant", "t"}, {"dataset", "sample-test"}});
  auto out = p.run(std::vector<Event>(100, ev("{}")));
  EXPECT_EQ(out.dropped + out.events.size(), 100u);
  EXPECT_EQ(out.dropped_by_step.at(0), out.dropped);
  EXPECT_EQ(metrics().value("bf_piper_step_dropped_events_total", {{"tenant", "t"}, {"dataset", "sample-test"}, {"step", "1"}, {"kind", "sample"}}),
            static_cast<double>(out.dropped));
  EXPECT_EQ(compile_error(R"([{"sample": {}}])"), "dataset a/t/d: pipeline step 1 (sample): missing option 'rate'");
  EXPECT_EQ(compile_error(R"([{"sample": {"rate": 0}}])"),
            "dataset a/t/d: pipeline step 1 (sample): option 'rate': must be between 1 and 1099511627776");
  EXPECT_EQ(compile_error(R"([{"sample": {"rate": 2, "mode": "dynamic"}}])"),
            "dataset a/t/d: pipeline step 1 (sample): option 'key': mode dynamic needs a key (an expression, e.g. 'session_id')");
  EXPECT_EQ(compile_error(R"([{"sample": {"rate": 2, "key": "k", "max_keys": 5}}])"),
            "dataset a/t/d: pipeline step 1 (sample): option 'max_keys': only mode dynamic tracks keys");
  EXPECT_EQ(compile_error(R"([{"sample": {"rate": 2, "key": "k ==="}}])").rfind("dataset a/t/d: pipeline step 1 (sample): option 'key': line 1", 0), 0u);
}

// ---- route -----------------------------------------------------------------------

TEST(Route, CopyAndMoveByConditionToSeveralTargets) {
  PipelineContext ctx{"d", {"alerts", "archive"}};
  auto p = compile(R"([{"route": {"to": "alerts", "mode": "move", "if": "severity <= 3"}},
                       {"route": {"to": ["archive", "alerts"], "if": "keep == true"}},
                       {"set": {"field": "seen", "value": true}}])", &ctx);
  auto out = p.run({ev(R"({"n": 1, "severity": 2})"), ev(R"({"n": 2, "severity": 5, "keep": true})"), ev(R"({"n": 3, "severity": 6})")});
  ASSERT_EQ(out.events.size(), 2u);  // 1 moved away; 2 copied and kept; 3 untouched
  EXPECT_EQ(out.events[0].at("n"), 2);
  EXPECT_EQ(out.events[0].at("seen"), true);
  EXPECT_EQ(out.routed_count(), 3u);
  ASSERT_EQ(out.routed.size(), 2u);
  EXPECT_EQ(out.routed[0].first, "alerts");
  ASSERT_EQ(out.routed[0].second.size(), 2u);
  EXPECT_EQ(out.routed[0].second[0].at("n"), 1);
  EXPECT_EQ(out.routed[0].second[1].at("n"), 2);
  EXPECT_FALSE(out.routed[0].second[1].contains("seen"));  // routed as it was at the route step
  EXPECT_EQ(out.routed[1].first, "archive");
  ASSERT_EQ(out.routed[1].second.size(), 1u);
  EXPECT_EQ(out.dropped, 0u);  // routing is not a discard
}

TEST(Route, UnknownTargetIsACompileError) {
  PipelineContext ctx{"d", {"alerts"}};
  EXPECT_EQ(compile_error(R"([{"route": {"to": "alrets"}}])", &ctx),
            "dataset a/t/d: pipeline step 1 (route): option 'to': unknown dataset 'alrets' (datasets of this tenant: alerts)");
  EXPECT_EQ(compile_error(R"([{"route": {"to": "d"}}])", &ctx),
            "dataset a/t/d: pipeline step 1 (route): option 'to': a dataset cannot route to itself");
  EXPECT_EQ(compile_error(R"([{"route": {"to": ["alerts", "alerts"]}}])", &ctx),
            "dataset a/t/d: pipeline step 1 (route): option 'to': dataset 'alerts' is listed twice");
  EXPECT_EQ(compile_error(R"([{"route": {"to": "Bad/Id"}}])"),
            "dataset a/t/d: pipeline step 1 (route): option 'to': 'Bad/Id' is not a valid dataset id");
  EXPECT_EQ(compile_error(R"([{"route": {"to": "alerts", "mode": "teleport"}}])", &ctx),
            "dataset a/t/d: pipeline step 1 (route): option 'mode': 'teleport' is not one of copy, move");
  EXPECT_EQ(compile_error(R"([{"route": {"to": "alerts"}}])", &ctx), "(compiled)");
}

TEST(Route, DerivedBatchIdsAreStableDistinctAndInTheInputsHour) {
  const std::string id = new_ulid();
  EXPECT_EQ(derived_ulid(id, "route\x1f" "a\x1f" "b"), derived_ulid(id, "route\x1f" "a\x1f" "b"));
  EXPECT_NE(derived_ulid(id, "route\x1f" "a\x1f" "b"), derived_ulid(id, "route\x1f" "a\x1f" "c"));
  EXPECT_NE(derived_ulid(id, "x"), derived_ulid(new_ulid(), "x"));
  EXPECT_TRUE(is_valid_ulid(derived_ulid(id, "x")));
  EXPECT_EQ(ulid_time_ms(derived_ulid(id, "x")), ulid_time_ms(id));
}
