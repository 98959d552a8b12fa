#pragma once
// Helpers for the tests that compare our flow decoders with Wireshark's: finding a
// program on PATH, writing a libpcap file (LINKTYPE_ETHERNET) of UDP datagrams, and
// running `tshark -T json` on it.
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "fixtures/process.h"
#include "flow_test_util.h"
#include "test_util.h"

namespace bf::test {

inline std::string find_program(const std::string& name) {
  std::string path = std::getenv("PATH") ? std::getenv("PATH") : "";
  path += ":/usr/sbin:/usr/bin:/sbin:/bin";
  std::stringstream ss(path);
  std::string dir;
  while (std::getline(ss, dir, ':')) {
    const std::string p = dir + "/" + name;
    if (!dir.empty() && ::access(p.c_str(), X_OK) == 0) return p;
  }
  return "";
}

inline void write_file(const std::string& path, const std::string& data) {
  std::ofstream(path, std::ios::binary) << data;
}

inline void pcap_header(std::string& f) {
  f.append("\xd4\xc3\xb2\xa1", 4);  // magic, little-endian file
  f.append("\x02\x00\x04\x00", 4);  // version 2.4
  f.append(8, '\0');                // thiszone, sigfigs
  f.append("\xff\xff\x00\x00", 4);  // snaplen 65535
  f.append("\x01\x00\x00\x00", 4);  // Ethernet
}
inline void pcap_packet(std::string& f, uint32_t secs, const std::string& frame) {
  auto le32 = [&](uint32_t v) {
    for (int i = 0; i < 4; ++i) f.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  };
  le32(secs);
  le32(0);
  le32(static_cast<uint32_t>(frame.size()));
  le32(static_cast<uint32_t>(frame.size()));
  f += frame;
}
inline std::string ipv4_frame(const char* src, const char* dst, uint8_t proto, const std::string& l4) {
  Bytes e;
  e.mac({0, 0x11, 0x22, 0x33, 0x44, 0x55}).mac({0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb}).u16(0x0800);
  Bytes ip;
  ip.u8(0x45).u8(0).u16(static_cast<uint32_t>(20 + l4.size())).u16(1).u16(0).u8(64).u8(proto).u16(0).ipv4(src).ipv4(dst);
  // Header checksum (RFC 791), so no tool has a reason to doubt the packet.
  uint32_t sum = 0;
  for (size_t i = 0; i < 20; i += 2) sum += uint32_t(uint8_t(ip.b[i])) << 8 | uint8_t(ip.b[i + 1]);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  ip.patch16(10, ~sum & 0xffff);
  return e.b + ip.b + l4;
}

// `datagrams` as UDP packets 127.0.0.1:40000 -> 127.0.0.1:`port`, in a pcap.
inline std::string udp_pcap(const std::vector<std::string>& datagrams, uint16_t port) {
  std::string f;
  pcap_header(f);
  for (const auto& d : datagrams) {
    Bytes u;
    u.u16(40000).u16(port).u16(static_cast<uint32_t>(8 + d.size())).u16(0);
    pcap_packet(f, 1764676800, ipv4_frame("127.0.0.1", "127.0.0.1", 17, u.b + d));
  }
  return f;
}

// `tshark -r pcap -T json <args>`, parsed: one element per packet.
inline boost::json::array run_tshark_json(const TempDir& dir, const std::string& pcap, const std::string& args) {
  const std::string json = dir.str() + "/tshark.json";
  // tshark's notes go to stderr and stay out of the JSON
  const std::string cmd = "(" + find_program("tshark") + " -r " + pcap + " -T json " + args + " > " + json + " 2>/dev/null)";
  const auto [rc, output] = run_command(cmd);
  EXPECT_EQ(rc, 0) << cmd << ": " << output;
  std::ifstream in(json);
  std::stringstream ss;
  ss << in.rdbuf();
  return boost::json::parse(ss.str()).as_array();
}

}  // namespace bf::test
