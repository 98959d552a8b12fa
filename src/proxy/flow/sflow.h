#pragma once
// sFlow version 5 (sflow.org/sflow_version_5.txt): flow samples (compact and
// expanded) with the sampled packet header decoded (Ethernet, 802.1Q, IPv4, IPv6,
// TCP, UDP, ICMP) and extended switch / router / gateway data; counter samples
// (compact and expanded) with generic and Ethernet interface counters. One event per
// flow sample and one per counter record. Pure and stateless.
#include <string>
#include <string_view>

#include "proxy/flow/output.h"

namespace bf::flow {

void decode_sflow(std::string_view datagram, const EventContext& ctx, std::string& out, FlowStats& stats);

}  // namespace bf::flow
