// The table of IANA IPFIX Information Elements we name (facts from the IANA
// "IPFIX Information Elements" registry: id, name, abstract data type). Elements not
// listed still decode, named ie_<id> (see ipfix.cpp).
#include "proxy/flow/ipfix_fields.h"

#include <algorithm>
#include <array>

namespace bf::flow {
namespace {

using T = IeType;
constexpr T U = T::unsigned_int, V4 = T::ipv4, V6 = T::ipv6, MAC = T::mac, STR = T::string, OCT = T::octets;

constexpr InfoElement kElements[] = {
    {1, U, "octetDeltaCount"}, {2, U, "packetDeltaCount"}, {3, U, "deltaFlowCount"},
    {4, U, "protocolIdentifier"}, {5, U, "ipClassOfService"}, {6, U, "tcpControlBits"},
    {7, U, "sourceTransportPort"}, {8, V4, "sourceIPv4Address"}, {9, U, "sourceIPv4PrefixLength"},
    {10, U, "ingressInterface"}, {11, U, "destinationTransportPort"}, {12, V4, "destinationIPv4Address"},
    {13, U, "destinationIPv4PrefixLength"}, {14, U, "egressInterface"}, {15, V4, "ipNextHopIPv4Address"},
    {16, U, "bgpSourceAsNumber"}, {17, U, "bgpDestinationAsNumber"}, {18, V4, "bgpNextHopIPv4Address"},
    {19, U, "postMCastPacketDeltaCount"}, {20, U, "postMCastOctetDeltaCount"}, {21, U, "flowEndSysUpTime"},
    {22, U, "flowStartSysUpTime"}, {23, U, "postOctetDeltaCount"}, {24, U, "postPacketDeltaCount"},
    {25, U, "minimumIpTotalLength"}, {26, U, "maximumIpTotalLength"}, {27, V6, "sourceIPv6Address"},
    {28, V6, "destinationIPv6Address"}, {29, U, "sourceIPv6PrefixLength"}, {30, U, "destinationIPv6PrefixLength"},
    {31, U, "flowLabelIPv6"}, {32, U, "icmpTypeCodeIPv4"}, {33, U, "igmpType"}, {34, U, "samplingInterval"},
    {35, U, "samplingAlgorithm"}, {36, U, "flowActiveTimeout"}, {37, U, "flowIdleTimeout"}, {38, U, "engineType"},
    {39, U, "engineId"}, {40, U, "exportedOctetTotalCount"}, {41, U, "exportedMessageTotalCount"},
    {42, U, "exportedFlowRecordTotalCount"}, {43, V4, "ipv4RouterSc"}, {44, V4, "sourceIPv4Prefix"},
    {45, V4, "destinationIPv4Prefix"}, {46, U, "mplsTopLabelType"}, {47, V4, "mplsTopLabelIPv4Address"},
    {48, U, "samplerId"}, {49, U, "samplerMode"}, {50, U, "samplerRandomInterval"}, {51, U, "classId"},
    {52, U, "minimumTTL"}, {53, U, "maximumTTL"}, {54, U, "fragmentIdentification"},
    {55, U, "postIpClassOfService"}, {56, MAC, "sourceMacAddress"}, {57, MAC, "postDestinationMacAddress"},
    {58, U, "vlanId"}, {59, U, "postVlanId"}, {60, U, "ipVersion"}, {61, U, "flowDirection"},
    {62, V6, "ipNextHopIPv6Address"}, {63, V6, "bgpNextHopIPv6Address"}, {64, U, "ipv6ExtensionHeaders"},
    {70, OCT, "mplsTopLabelStackSection"}, {71, OCT, "mplsLabelStackSection2"},
    {72, OCT, "mplsLabelStackSection3"}, {73, OCT, "mplsLabelStackSection4"},
    {74, OCT, "mplsLabelStackSection5"}, {75, OCT, "mplsLabelStackSection6"},
    {76, OCT, "mplsLabelStackSection7"}, {77, OCT, "mplsLabelStackSection8"},
    {78, OCT, "mplsLabelStackSection9"}, {79, OCT, "mplsLabelStackSection10"},
    {80, MAC, "destinationMacAddress"}, {81, MAC, "postSourceMacAddress"}, {82, STR, "interfaceName"},
    {83, STR, "interfaceDescription"}, {84, STR, "samplerName"}, {85, U, "octetTotalCount"},
    {86, U, "packetTotalCount"}, {87, U, "flagsAndSamplerId"}, {88, U, "fragmentOffset"},
    {89, U, "forwardingStatus"}, {90, OCT, "mplsVpnRouteDistinguisher"}, {91, U, "mplsTopLabelPrefixLength"},
    {92, U, "srcTrafficIndex"}, {93, U, "dstTrafficIndex"}, {94, STR, "applicationDescription"},
    {95, OCT, "applicationId"}, {96, STR, "applicationName"}, {98, U, "postIpDiffServCodePoint"},
    {99, U, "multicastReplicationFactor"}, {100, STR, "className"}, {101, U, "classificationEngineId"},
    {102, U, "layer2packetSectionOffset"}, {103, U, "layer2packetSectionSize"},
    {104, OCT, "layer2packetSectionData"}, {128, U, "bgpNextAdjacentAsNumber"},
    {129, U, "bgpPrevAdjacentAsNumber"}, {130, V4, "exporterIPv4Address"}, {131, V6, "exporterIPv6Address"},
    {132, U, "droppedOctetDeltaCount"}, {133, U, "droppedPacketDeltaCount"}, {134, U, "droppedOctetTotalCount"},
    {135, U, "droppedPacketTotalCount"}, {136, U, "flowEndReason"}, {137, U, "commonPropertiesId"},
    {138, U, "observationPointId"}, {139, U, "icmpTypeCodeIPv6"}, {140, V6, "mplsTopLabelIPv6Address"},
    {141, U, "lineCardId"}, {142, U, "portId"}, {143, U, "meteringProcessId"}, {144, U, "exportingProcessId"},
    {145, U, "templateId"}, {146, U, "wlanChannelId"}, {147, STR, "wlanSSID"}, {148, U, "flowId"},
    {149, U, "observationDomainId"}, {150, T::time_s, "flowStartSeconds"}, {151, T::time_s, "flowEndSeconds"},
    {152, T::time_ms, "flowStartMilliseconds"}, {153, T::time_ms, "flowEndMilliseconds"},
    {154, T::time_us, "flowStartMicroseconds"}, {155, T::time_us, "flowEndMicroseconds"},
    {156, T::time_ns, "flowStartNanoseconds"}, {157, T::time_ns, "flowEndNanoseconds"},
    {158, U, "flowStartDeltaMicroseconds"}, {159, U, "flowEndDeltaMicroseconds"},
    {160, T::time_ms, "systemInitTimeMilliseconds"}, {161, U, "flowDurationMilliseconds"},
    {162, U, "flowDurationMicroseconds"}, {163, U, "observedFlowTotalCount"}, {164, U, "ignoredPacketTotalCount"},
    {165, U, "ignoredOctetTotalCount"}, {166, U, "notSentFlowTotalCount"}, {167, U, "notSentPacketTotalCount"},
    {168, U, "notSentOctetTotalCount"}, {169, V6, "destinationIPv6Prefix"}, {170, V6, "sourceIPv6Prefix"},
    {171, U, "postOctetTotalCount"}, {172, U, "postPacketTotalCount"}, {173, U, "flowKeyIndicator"},
    {174, U, "postMCastPacketTotalCount"}, {175, U, "postMCastOctetTotalCount"}, {176, U, "icmpTypeIPv4"},
    {177, U, "icmpCodeIPv4"}, {178, U, "icmpTypeIPv6"}, {179, U, "icmpCodeIPv6"}, {180, U, "udpSourcePort"},
    {181, U, "udpDestinationPort"}, {182, U, "tcpSourcePort"}, {183, U, "tcpDestinationPort"},
    {184, U, "tcpSequenceNumber"}, {185, U, "tcpAcknowledgementNumber"}, {186, U, "tcpWindowSize"},
    {187, U, "tcpUrgentPointer"}, {188, U, "tcpHeaderLength"}, {189, U, "ipHeaderLength"},
    {190, U, "totalLengthIPv4"}, {191, U, "payloadLengthIPv6"}, {192, U, "ipTTL"}, {193, U, "nextHeaderIPv6"},
    {194, U, "mplsPayloadLength"}, {195, U, "ipDiffServCodePoint"}, {196, U, "ipPrecedence"},
    {197, U, "fragmentFlags"}, {198, U, "octetDeltaSumOfSquares"}, {199, U, "octetTotalSumOfSquares"},
    {200, U, "mplsTopLabelTTL"}, {201, U, "mplsLabelStackLength"}, {202, U, "mplsLabelStackDepth"},
    {203, U, "mplsTopLabelExp"}, {204, U, "ipPayloadLength"}, {205, U, "udpMessageLength"},
    {206, U, "isMulticast"}, {207, U, "ipv4IHL"}, {208, U, "ipv4Options"}, {209, U, "tcpOptions"},
    {210, OCT, "paddingOctets"}, {211, V4, "collectorIPv4Address"}, {212, V6, "collectorIPv6Address"},
    {213, U, "exportInterface"}, {214, U, "exportProtocolVersion"}, {215, U, "exportTransportProtocol"},
    {216, U, "collectorTransportPort"}, {217, U, "exporterTransportPort"}, {218, U, "tcpSynTotalCount"},
    {219, U, "tcpFinTotalCount"}, {220, U, "tcpRstTotalCount"}, {221, U, "tcpPshTotalCount"},
    {222, U, "tcpAckTotalCount"}, {223, U, "tcpUrgTotalCount"}, {224, U, "ipTotalLength"},
    {225, V4, "postNATSourceIPv4Address"}, {226, V4, "postNATDestinationIPv4Address"},
    {227, U, "postNAPTSourceTransportPort"}, {228, U, "postNAPTDestinationTransportPort"},
    {229, U, "natOriginatingAddressRealm"}, {230, U, "natEvent"}, {231, U, "initiatorOctets"},
    {232, U, "responderOctets"}, {233, U, "firewallEvent"}, {234, U, "ingressVRFID"}, {235, U, "egressVRFID"},
    {236, STR, "VRFname"}, {237, U, "postMplsTopLabelExp"}, {238, U, "tcpWindowScale"},
    {239, U, "biflowDirection"}, {240, U, "ethernetHeaderLength"}, {241, U, "ethernetPayloadLength"},
    {242, U, "ethernetTotalLength"}, {243, U, "dot1qVlanId"}, {244, U, "dot1qPriority"},
    {245, U, "dot1qCustomerVlanId"}, {246, U, "dot1qCustomerPriority"}, {252, U, "ingressPhysicalInterface"},
    {253, U, "egressPhysicalInterface"}, {256, U, "ethernetType"}, {281, V6, "postNATSourceIPv6Address"},
    {282, V6, "postNATDestinationIPv6Address"}, {298, U, "initiatorPackets"}, {299, U, "responderPackets"},
    {302, U, "selectorId"}, {304, U, "selectorAlgorithm"}, {305, U, "samplingPacketInterval"},
    {306, U, "samplingPacketSpace"}, {312, U, "dataLinkFrameSize"}, {315, OCT, "dataLinkFrameSection"},
    {322, T::time_s, "observationTimeSeconds"}, {323, T::time_ms, "observationTimeMilliseconds"},
    {324, T::time_us, "observationTimeMicroseconds"}, {325, T::time_ns, "observationTimeNanoseconds"},
    {346, U, "privateEnterpriseNumber"},
};

// Direct index for O(1) lookup on the hot path.
struct Index {
  std::array<const InfoElement*, 512> by_id{};
  Index() {
    for (const auto& e : kElements) by_id[e.id] = &e;
  }
};

}  // namespace

const InfoElement* find_ie(uint16_t id) {
  static const Index index;
  return id < index.by_id.size() ? index.by_id[id] : nullptr;
}

}  // namespace bf::flow
