// Our NetFlow v5 / v9 / IPFIX decoding against Wireshark's, field by field, on
// datagrams from a real exporter: softflowd reads a pcap this test writes and exports
// its flows to a UDP socket here; the datagrams are decoded by flow::FlowDecoder and,
// wrapped into a pcap of their own, by `tshark -T json`. Needs Debian's softflowd
// and tshark (scripts/setup.sh installs both); skipped with a message without them.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <sstream>
#include <thread>

#include "fixtures/process.h"
#include "flow_test_util.h"
#include "pcap_util.h"
#include "proxy/flow/netflow.h"
#include "test_util.h"

namespace bf {
namespace {

using test::Bytes;
using test::find_program;
using test::ipv4_frame;
using test::pcap_header;
using test::pcap_packet;
using test::write_file;

std::string tcp(uint16_t sp, uint16_t dp, uint8_t flags, size_t payload) {
  Bytes b;
  b.u16(sp).u16(dp).u32(1).u32(0).u8(0x50).u8(flags).u16(1024).u16(0).u16(0);
  return b.b + std::string(payload, 'x');
}
std::string udp(uint16_t sp, uint16_t dp, size_t payload) {
  Bytes b;
  b.u16(sp).u16(dp).u16(static_cast<uint32_t>(8 + payload)).u16(0);
  return b.b + std::string(payload, 'z');
}

// Traffic for softflowd: a TCP conversation, 60 one-packet UDP flows (so the export
// spans several datagrams), an ICMP echo.
std::string traffic_pcap() {
  std::string f;
  pcap_header(f);
  const uint32_t t0 = 1764676800;
  for (uint32_t i = 0; i < 4; ++i) pcap_packet(f, t0 + i, ipv4_frame("10.0.0.1", "10.0.0.2", 6, tcp(40000, 80, 0x18, 100)));
  for (uint32_t i = 0; i < 2; ++i) pcap_packet(f, t0 + i, ipv4_frame("10.0.0.2", "10.0.0.1", 6, tcp(80, 40000, 0x10, 20)));
  pcap_packet(f, t0 + 5, ipv4_frame("10.0.0.1", "10.0.0.2", 6, tcp(40000, 80, 0x11, 0)));
  for (uint32_t i = 0; i < 60; ++i) {
    const std::string src = "10.1.0." + std::to_string(i + 1);
    pcap_packet(f, t0 + i % 7, ipv4_frame(src.c_str(), "10.2.0.1", 17, udp(static_cast<uint16_t>(1000 + i), 514, i + 1)));
  }
  Bytes icmp;
  icmp.u8(8).u8(0).u16(0).u32(1);
  pcap_packet(f, t0 + 2, ipv4_frame("10.0.0.4", "10.0.0.5", 1, icmp.b + std::string(56, 'p')));
  return f;
}

// softflowd exporting `pcap` as NetFlow `version` ("5", "9", "10"): the datagrams it sent.
std::vector<std::string> export_with_softflowd(const test::TempDir& dir, const std::string& version,
                                               const std::vector<std::string>& extra) {
  const std::string softflowd = find_program("softflowd"), ctl = find_program("softflowctl");
  const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  const std::string sock = dir.str() + "/ctl" + version, in = dir.str() + "/in.pcap";
  std::vector<std::string> argv{softflowd, "-d", "-r", in, "-n", "127.0.0.1:" + std::to_string(ntohs(a.sin_port)),
                                "-v", version, "-c", sock, "-p", dir.str() + "/pid" + version};
  argv.insert(argv.end(), extra.begin(), extra.end());
  test::ChildOptions co;
  co.log_file = dir.str() + "/softflowd" + version + ".log";
  test::ChildProcess softflowd_process(argv, co);
  // softflowd 1.1 reading a file waits on its control socket between reads: one
  // command lets it read the capture, "shutdown" then expires and exports every flow.
  for (int i = 0; i < 100 && ::access(sock.c_str(), F_OK) != 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  test::run_command(ctl + " -c " + sock + " statistics");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  test::run_command(ctl + " -c " + sock + " shutdown");
  std::vector<std::string> datagrams;
  char buf[65536];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 2000) <= 0) break;
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n > 0) datagrams.emplace_back(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  softflowd_process.stop(std::chrono::seconds(5));
  return datagrams;
}

// The datagrams as a pcap of UDP packets to port 2055, decoded by tshark.
boost::json::array tshark_fields(const test::TempDir& dir, const std::vector<std::string>& datagrams,
                                 const std::vector<std::string>& fields) {
  const std::string pcap = dir.str() + "/export.pcap";
  write_file(pcap, test::udp_pcap(datagrams, 2055));
  std::string args = "-d udp.port==2055,cflow";
  for (auto& field : fields) args += " -e " + field;
  return test::run_tshark_json(dir, pcap, args);
}

// How a tshark field and ours correspond.
enum class Kind { text, integer, hex, uptime_seconds };
struct FieldMap {
  std::string tshark;
  std::string ours, reverse;  // reverse: the RFC 5103 field tshark lists after the forward one
  Kind kind;
};

std::string ours_as_text(const Event& e, const std::string& key, Kind kind) {
  const auto* v = e.if_contains(key);
  if (!v) return "<absent " + key + ">";
  if (kind == Kind::text) return v->is_string() ? std::string(v->as_string()) : boost::json::serialize(*v);
  return std::to_string(test::unum(e, key.c_str()));
}
std::string tshark_as_text(const std::string& s, Kind kind) {
  switch (kind) {
    case Kind::text: return s;
    case Kind::integer: return std::to_string(std::stoull(s));
    case Kind::hex: return std::to_string(std::stoull(s, nullptr, 16));
    case Kind::uptime_seconds: return std::to_string(std::llround(std::stod(s) * 1000));
  }
  return s;
}

void compare_with_tshark(const std::string& version, const std::vector<std::string>& extra,
                         const std::vector<FieldMap>& fields, bool expect_reverse) {
  if (find_program("softflowd").empty() || find_program("softflowctl").empty() || find_program("tshark").empty())
    GTEST_SKIP() << "softflowd/softflowctl and tshark are needed (Debian packages softflowd, tshark; "
                    "scripts/setup.sh installs them)";
  test::TempDir dir;
  write_file(dir.str() + "/in.pcap", traffic_pcap());
  const auto datagrams = export_with_softflowd(dir, version, extra);
  ASSERT_GE(datagrams.size(), 2u) << "softflowd exported nothing";

  flow::FlowDecoder decoder;
  std::vector<std::vector<Event>> ours;
  size_t flows = 0;
  bool saw_reverse = false;
  for (const auto& d : datagrams) {
    std::string out;
    flow::FlowStats stats;
    decoder.decode(d, test::test_context(1764676800000000LL, "127.0.0.1:40000"), out, stats);
    EXPECT_EQ(stats.total_errors(), 0u);
    std::vector<Event> records;
    for (auto& e : test::events_of(out)) {
      if (test::str(e, "record_type") != "flow") continue;
      saw_reverse |= e.contains("reverseOctetDeltaCount");
      records.push_back(e);
    }
    flows += records.size();
    ours.push_back(std::move(records));
  }
  EXPECT_GE(flows, 60u);  // softflowd's flows, none lost
  EXPECT_EQ(saw_reverse, expect_reverse);

  std::vector<std::string> names{"cflow.sequence"};
  for (auto& f : fields) names.push_back(f.tshark);
  const auto packets = tshark_fields(dir, datagrams, names);
  ASSERT_EQ(packets.size(), datagrams.size());
  size_t compared = 0;
  for (size_t p = 0; p < packets.size(); ++p) {
    const auto& layers = packets[p].at("_source").at("layers").as_object();
    for (const auto& f : fields) {
      std::vector<std::string> theirs;
      if (const auto* arr = layers.if_contains(f.tshark))
        for (const auto& v : arr->as_array()) theirs.push_back(tshark_as_text(std::string(v.as_string()), f.kind));
      std::vector<std::string> mine;
      for (const Event& e : ours[p]) {
        // A record whose template lacks the field (e.g. ports of the ICMP template)
        // has none in tshark's list either; one we missed leaves the lists unequal.
        if (e.contains(f.ours)) mine.push_back(ours_as_text(e, f.ours, f.kind));
        if (!f.reverse.empty() && e.contains(f.reverse)) mine.push_back(ours_as_text(e, f.reverse, f.kind));
      }
      EXPECT_EQ(mine, theirs) << "datagram " << p << ", field " << f.tshark << " / " << f.ours;
      compared += theirs.size();
    }
    for (const Event& e : ours[p])
      EXPECT_EQ(std::to_string(test::unum(e, "flow_sequence")),
                std::string(layers.at("cflow.sequence").as_array().at(0).as_string()));
  }
  EXPECT_GT(compared, 60u * fields.size() / 2);
}

TEST(FlowWireshark, NetflowV5FromSoftflowdMatchesTshark) {
  compare_with_tshark("5", {},
                      {{"cflow.srcaddr", "sourceIPv4Address", "", Kind::text},
                       {"cflow.dstaddr", "destinationIPv4Address", "", Kind::text},
                       {"cflow.nexthop", "ipNextHopIPv4Address", "", Kind::text},
                       {"cflow.inputint", "ingressInterface", "", Kind::integer},
                       {"cflow.outputint", "egressInterface", "", Kind::integer},
                       {"cflow.packets", "packetDeltaCount", "", Kind::integer},
                       {"cflow.octets", "octetDeltaCount", "", Kind::integer},
                       {"cflow.timestart", "flowStartSysUpTime", "", Kind::uptime_seconds},
                       {"cflow.timeend", "flowEndSysUpTime", "", Kind::uptime_seconds},
                       {"cflow.srcport", "sourceTransportPort", "", Kind::integer},
                       {"cflow.dstport", "destinationTransportPort", "", Kind::integer},
                       {"cflow.tcpflags", "tcpControlBits", "", Kind::hex},
                       {"cflow.protocol", "protocolIdentifier", "", Kind::integer},
                       {"cflow.tos", "ipClassOfService", "", Kind::hex},
                       {"cflow.srcas", "bgpSourceAsNumber", "", Kind::integer},
                       {"cflow.dstas", "bgpDestinationAsNumber", "", Kind::integer},
                       {"cflow.srcmask", "sourceIPv4PrefixLength", "", Kind::integer},
                       {"cflow.dstmask", "destinationIPv4PrefixLength", "", Kind::integer}},
                      false);
}

const std::vector<FieldMap> kTemplateFields{
    {"cflow.srcaddr", "sourceIPv4Address", "", Kind::text},
    {"cflow.dstaddr", "destinationIPv4Address", "", Kind::text},
    {"cflow.timestart", "flowStartSysUpTime", "", Kind::uptime_seconds},
    {"cflow.timeend", "flowEndSysUpTime", "", Kind::uptime_seconds},
    {"cflow.octets", "octetDeltaCount", "reverseOctetDeltaCount", Kind::integer},
    {"cflow.packets", "packetDeltaCount", "reversePacketDeltaCount", Kind::integer},
    {"cflow.inputint", "ingressInterface", "", Kind::integer},
    {"cflow.outputint", "egressInterface", "", Kind::integer},
    {"cflow.direction", "flowDirection", "", Kind::integer},
    {"cflow.flow_end_reason", "flowEndReason", "", Kind::integer},
    {"cflow.srcport", "sourceTransportPort", "", Kind::integer},
    {"cflow.dstport", "destinationTransportPort", "", Kind::integer},
    {"cflow.protocol", "protocolIdentifier", "", Kind::integer},
    {"cflow.tcpflags", "tcpControlBits", "reverseTcpControlBits", Kind::hex},
    {"cflow.ip_version", "ipVersion", "", Kind::integer},
    {"cflow.tos", "ipClassOfService", "reverseIpClassOfService", Kind::hex},
};

TEST(FlowWireshark, NetflowV9FromSoftflowdMatchesTshark) { compare_with_tshark("9", {}, kTemplateFields, false); }

TEST(FlowWireshark, IpfixBiflowFromSoftflowdMatchesTshark) {
  compare_with_tshark("10", {"-b"}, kTemplateFields, true);
}

}  // namespace
}  // namespace bf
