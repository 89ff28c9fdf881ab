// tunsec native addon: TUN offloads (IFF_VNET_HDR + TUNSETOFFLOAD).
//
// With IFF_VNET_HDR every read and write on the TUN fd carries a struct virtio_net_hdr in front of
// the IP packet. With TUN_F_TSO4/6 (and TUN_F_USO4/6) the kernel hands us TCP (UDP) super-packets
// of up to 64 KiB with gso_size = the MSS it derived from the TUN MTU; with TUN_F_CSUM it may leave
// the L4 checksum partial (VIRTIO_NET_HDR_F_NEEDS_CSUM: seeded with the pseudo-header sum, to be
// completed over [csum_start, end) and stored at csum_start + csum_offset).
//
// Outbound (GSO split): every super-packet is cut here into MTU-sized segments exactly as the
// kernel's own GSO would (IPv4: ID + i, total length, header checksum; IPv6: payload length; TCP:
// sequence number, FIN/PSH on the last segment only, CWR on the first only, checksum; UDP: length,
// checksum), so the JS datapath sees ordinary packets and seals each one as its own ESP packet;
// SPD lookups, lifetimes and counters see every segment as if there were no offload.
// Refused (counted, dropped): GSO over IPv6 extension headers (the pseudo-header may need the
// routing header's final destination), IPv4 source-route options (likewise), fragments, UFO.
//
// Inbound (GRO): decrypted TCP segments of one flow that follow each other in a batch are written
// as one super-packet (VIRTIO_NET_HDR_GSO_TCPV4/6, NEEDS_CSUM with the pseudo-header seed), the
// kernel's tcp_gro_receive rules: same addresses and ports, contiguous sequence numbers, same ACK
// number, same TCP options, same flags except PSH (which ends a super-packet), every segment but
// the last exactly gso_size long, same TOS/traffic class (so a CE mark on one segment never spreads
// to or vanishes from another), TTL/hop limit, DF and consecutive IPv4 IDs; no IPv4 options, no IPv6
// extension headers, no SYN/RST/URG/FIN/CWR; every segment's IP and TCP checksum verified first (a
// segment with a bad checksum is written alone and the kernel drops it). A packet is only ever
// appended to the newest super-packet of its flow, so no flow is reordered.
#include <napi.h>

#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace tunsec {

namespace {

// struct virtio_net_hdr and its constants (include/uapi/linux/virtio_net.h, which does not
// compile as C++: it has a member named `class`).
struct virtio_net_hdr {
  uint8_t flags;
  uint8_t gso_type;
  uint16_t hdr_len;
  uint16_t gso_size;
  uint16_t csum_start;
  uint16_t csum_offset;
};
constexpr size_t kVnetLen = sizeof(virtio_net_hdr);
static_assert(kVnetLen == 10, "virtio_net_hdr is 10 octets");
constexpr uint8_t VIRTIO_NET_HDR_F_NEEDS_CSUM = 1, VIRTIO_NET_HDR_F_DATA_VALID = 2;
constexpr uint8_t VIRTIO_NET_HDR_GSO_NONE = 0, VIRTIO_NET_HDR_GSO_TCPV4 = 1, VIRTIO_NET_HDR_GSO_TCPV6 = 4, VIRTIO_NET_HDR_GSO_ECN = 0x80;
constexpr uint8_t kGsoUdpL4 = 5;  // VIRTIO_NET_HDR_GSO_UDP_L4 (Linux 6.2)
constexpr uint8_t kTcpFin = 0x01, kTcpSyn = 0x02, kTcpRst = 0x04, kTcpPsh = 0x08, kTcpAck = 0x10, kTcpUrg = 0x20, kTcpCwr = 0x80;
constexpr size_t kMaxIpLen = 65535;

inline uint16_t Be16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }
inline uint32_t Be32(const uint8_t *p) { return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3]; }
inline void Put16(uint8_t *p, uint32_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
inline void Put32(uint8_t *p, uint32_t v) { p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v; }

inline uint32_t Fold(uint64_t s) {
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return (uint32_t)s;
}

// RFC 1071 one's-complement sum of p[0, n) as big-endian 16-bit words, folded to 16 bits. Summed in
// native order 8 octets at a time; the folded sum is byte-order independent up to a swap (§2(B)).
uint32_t Sum(const uint8_t *p, size_t n) {
  uint64_t s = 0;
  while (n >= 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    s += (w & 0xffffffffu) + (w >> 32);
    p += 8;
    n -= 8;
  }
  while (n >= 2) {
    uint16_t w;
    memcpy(&w, p, 2);
    s += w;
    p += 2;
    n -= 2;
  }
  if (n) {
    uint8_t last[2] = {*p, 0};
    uint16_t w;
    memcpy(&w, last, 2);
    s += w;
  }
  uint32_t f = Fold(s);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  f = (uint32_t)__builtin_bswap16((uint16_t)f);
#endif
  return f;
}

// Pseudo-header sum (RFC 793 / RFC 8200 §8.1) of the IP packet at `ip` for an L4 length `l4len`.
uint32_t PseudoSum(const uint8_t *ip, uint8_t proto, size_t l4len) {
  if ((ip[0] >> 4) == 4) return Fold((uint64_t)Sum(ip + 12, 8) + proto + l4len);
  return Fold((uint64_t)Sum(ip + 8, 32) + proto + (l4len >> 16) + (l4len & 0xffff));
}

// The finished checksum over pseudo-header + l4[0, l4len) whose checksum field is zero.
uint16_t L4Checksum(const uint8_t *ip, uint8_t proto, const uint8_t *l4, size_t l4len) {
  return (uint16_t)~Fold((uint64_t)PseudoSum(ip, proto, l4len) + Sum(l4, l4len));
}

void SetIpv4HeaderChecksum(uint8_t *ip, size_t ihl) {
  ip[10] = ip[11] = 0;
  Put16(ip + 10, (uint16_t)~Sum(ip, ihl));
}

// IPv4 options that change the destination the pseudo-header must use (LSRR, SSRR): segmenting
// such a packet would need the final hop; the kernel never builds one for a TSO socket anyway.
bool HasSourceRoute(const uint8_t *ip, size_t ihl) {
  size_t i = 20;
  while (i < ihl) {
    uint8_t t = ip[i];
    if (t == 0) break;
    if (t == 1) {
      i++;
      continue;
    }
    if (t == 131 || t == 137) return true;
    if (i + 1 >= ihl || ip[i + 1] < 2) return true;  // malformed: refuse rather than guess
    i += ip[i + 1];
  }
  return false;
}

struct VnetHdr {
  uint8_t flags, gsoType;
  uint16_t hdrLen, gsoSize, csumStart, csumOffset;
};

VnetHdr DecodeVnet(const uint8_t *b) {
  virtio_net_hdr h;
  memcpy(&h, b, kVnetLen);  // host byte order (no TUNSETVNETLE/BE)
  return VnetHdr{h.flags, h.gso_type, h.hdr_len, h.gso_size, h.csum_start, h.csum_offset};
}

void EncodeVnet(uint8_t *b, uint8_t flags, uint8_t gsoType, uint16_t hdrLen, uint16_t gsoSize, uint16_t csumStart, uint16_t csumOffset) {
  virtio_net_hdr h;
  h.flags = flags;
  h.gso_type = gsoType;
  h.hdr_len = hdrLen;
  h.gso_size = gsoSize;
  h.csum_start = csumStart;
  h.csum_offset = csumOffset;
  memcpy(b, &h, kVnetLen);
}

}  // namespace

// Cuts the packet `pkt[0, len)` described by `vh` into segments, writing segments
// [first, first + maxOut) into out[i] (capacity caps[i]) with lengths in lens[i]. Returns how many
// were written and sets *total to the number of segments the packet makes; -1 when the packet is
// refused (malformed, unsupported or a segment larger than its slot).
static int GsoSplit(const VnetHdr &vh, const uint8_t *pkt, size_t len, int first, uint8_t *const *out, const size_t *caps, int32_t *lens, int maxOut, int *total) {
  uint8_t type = vh.gsoType & (uint8_t)~VIRTIO_NET_HDR_GSO_ECN;
  if (maxOut <= 0) return -1;
  if (type == VIRTIO_NET_HDR_GSO_NONE) {
    *total = 1;
    if (len > caps[0]) return -1;
    memcpy(out[0], pkt, len);
    if (vh.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
      // Complete the partial checksum: the field holds the pseudo-header seed (skb_checksum_help).
      size_t at = (size_t)vh.csumStart + vh.csumOffset;
      if (vh.csumStart >= len || at + 2 > len) return -1;
      uint16_t c = (uint16_t)~Sum(out[0] + vh.csumStart, len - vh.csumStart);
      Put16(out[0] + at, c == 0 ? 0xffff : c);
    }
    lens[0] = (int32_t)len;
    return 1;
  }
  if (len < 20 || vh.gsoSize == 0) return -1;
  int version = pkt[0] >> 4;
  size_t iphl;
  uint8_t proto;
  if (version == 4) {
    iphl = (size_t)(pkt[0] & 0x0f) * 4;
    if (iphl < 20 || iphl > len || Be16(pkt + 2) != len) return -1;
    if ((Be16(pkt + 6) & 0x3fff) != 0) return -1;  // MF or a fragment offset
    if (iphl > 20 && HasSourceRoute(pkt, iphl)) return -1;
    proto = pkt[9];
  } else if (version == 6) {
    iphl = 40;
    if (len < 40 || (size_t)Be16(pkt + 4) + 40 != len) return -1;
    proto = pkt[6];  // an extension header here is refused below
  } else {
    return -1;
  }
  size_t hdrLen;
  if (type == VIRTIO_NET_HDR_GSO_TCPV4 || type == VIRTIO_NET_HDR_GSO_TCPV6) {
    if (proto != IPPROTO_TCP || (version == 4) != (type == VIRTIO_NET_HDR_GSO_TCPV4)) return -1;
    if (iphl + 20 > len) return -1;
    size_t thl = (size_t)(pkt[iphl + 12] >> 4) * 4;
    if (thl < 20 || iphl + thl > len) return -1;
    hdrLen = iphl + thl;
  } else if (type == kGsoUdpL4) {
    if (proto != IPPROTO_UDP || iphl + 8 > len) return -1;
    hdrLen = iphl + 8;
  } else {
    return -1;  // UFO (GSO_UDP) is never enabled
  }
  size_t payload = len - hdrLen;
  size_t gso = vh.gsoSize;
  int nseg = payload == 0 ? 1 : (int)((payload + gso - 1) / gso);
  *total = nseg;
  if (first >= nseg) return 0;
  int last = nseg - 1;
  uint16_t id0 = version == 4 ? Be16(pkt + 4) : 0;
  uint32_t seq0 = proto == IPPROTO_TCP ? Be32(pkt + iphl + 4) : 0;
  int n = 0;
  for (int s = first; s < nseg && n < maxOut; s++, n++) {
    size_t off = hdrLen + (size_t)s * gso;
    size_t plen = payload == 0 ? 0 : (s == last ? payload - (size_t)s * gso : gso);
    size_t segLen = hdrLen + plen;
    if (segLen > caps[n]) return -1;
    uint8_t *d = out[n];
    memcpy(d, pkt, hdrLen);
    memcpy(d + hdrLen, pkt + off, plen);
    if (version == 4) {
      Put16(d + 2, (uint32_t)segLen);
      Put16(d + 4, (uint16_t)(id0 + s));
      SetIpv4HeaderChecksum(d, iphl);
    } else {
      Put16(d + 4, (uint32_t)(segLen - 40));
    }
    uint8_t *l4 = d + iphl;
    size_t l4len = segLen - iphl;
    if (proto == IPPROTO_TCP) {
      Put32(l4 + 4, seq0 + (uint32_t)((size_t)s * gso));
      if (s != last) l4[13] &= (uint8_t)~(kTcpFin | kTcpPsh);
      if (s != 0) l4[13] &= (uint8_t)~kTcpCwr;
      l4[16] = l4[17] = 0;
      Put16(l4 + 16, L4Checksum(d, IPPROTO_TCP, l4, l4len));
    } else {
      Put16(l4 + 4, (uint32_t)l4len);
      l4[6] = l4[7] = 0;
      uint16_t c = L4Checksum(d, IPPROTO_UDP, l4, l4len);
      Put16(l4 + 6, c == 0 ? 0xffff : c);
    }
    lens[n] = (int32_t)segLen;
  }
  return n;
}

// ---------------------------------------------------------------------------------------------
// GRO

namespace {

struct TcpSeg {
  bool tcp = false;        // has a flow key (IPv4 any header length, IPv6 without extension headers)
  bool candidate = false;  // may join or start a super-packet
  int version = 0;
  size_t iphl = 0, thl = 0, plen = 0;
  const uint8_t *addrs = nullptr;  // src ‖ dst
  size_t addrLen = 0;
  uint32_t ports = 0, seq = 0, ack = 0;
  uint8_t flags = 0;
};

TcpSeg ParseTcp(const uint8_t *p, size_t len) {
  TcpSeg s;
  if (len < 20) return s;
  s.version = p[0] >> 4;
  bool plain;
  if (s.version == 4) {
    s.iphl = (size_t)(p[0] & 0x0f) * 4;
    if (s.iphl < 20 || p[9] != IPPROTO_TCP || Be16(p + 2) != len || (Be16(p + 6) & 0x3fff) != 0) return s;
    s.addrs = p + 12;
    s.addrLen = 8;
    plain = s.iphl == 20;
  } else if (s.version == 6) {
    s.iphl = 40;
    if (len < 40 || p[6] != IPPROTO_TCP || (size_t)Be16(p + 4) + 40 != len) return s;
    s.addrs = p + 8;
    s.addrLen = 32;
    plain = true;
  } else {
    return s;
  }
  if (s.iphl + 20 > len) return s;
  const uint8_t *t = p + s.iphl;
  s.thl = (size_t)(t[12] >> 4) * 4;
  if (s.thl < 20 || s.iphl + s.thl > len) return s;
  s.tcp = true;
  s.ports = Be32(t);
  s.seq = Be32(t + 4);
  s.ack = Be32(t + 8);
  s.flags = t[13];
  s.plen = len - s.iphl - s.thl;
  if (!plain || s.plen == 0) return s;
  if (!(s.flags & kTcpAck) || (s.flags & (kTcpSyn | kTcpRst | kTcpUrg | kTcpFin | kTcpCwr))) return s;
  if (s.version == 4 && Sum(p, 20) != 0xffff) return s;
  if (Fold((uint64_t)PseudoSum(p, IPPROTO_TCP, len - s.iphl) + Sum(t, len - s.iphl)) != 0xffff) return s;
  s.candidate = true;
  return s;
}

bool SameFlow(const TcpSeg &a, const TcpSeg &b) {
  return a.tcp && b.tcp && a.version == b.version && a.ports == b.ports && memcmp(a.addrs, b.addrs, a.addrLen) == 0;
}

struct Group {
  int first;          // packet index of the head (its headers are the super-packet's)
  int tail;           // last member (member chain in `next`)
  int count;
  TcpSeg head;
  uint32_t nextSeq;
  uint16_t nextId;
  size_t lastPlen, total;
  bool pshEnd;
  uint8_t vnet[kVnetLen];
};

// May `s` (packet p) be appended to g (whose head packet is h)?
bool CanAppend(const Group &g, const uint8_t *h, const TcpSeg &s, const uint8_t *p) {
  const TcpSeg &a = g.head;
  if (!a.candidate || !s.candidate || g.pshEnd || g.lastPlen != a.plen) return false;
  if (s.iphl != a.iphl || s.thl != a.thl || s.plen > a.plen || s.seq != g.nextSeq || s.ack != a.ack) return false;
  if (((s.flags ^ a.flags) & (uint8_t)~kTcpPsh) != 0) return false;
  if (g.total + s.plen > kMaxIpLen) return false;
  if (memcmp(h + a.iphl + 20, p + s.iphl + 20, a.thl - 20) != 0) return false;  // TCP options
  if (a.version == 4) {
    if (h[1] != p[1] || h[8] != p[8] || (h[6] & 0x40) != (p[6] & 0x40) || Be16(p + 4) != g.nextId) return false;
  } else {
    if (memcmp(h, p, 4) != 0 || h[7] != p[7]) return false;  // traffic class, flow label, hop limit
  }
  return true;
}

// The super-packet headers of a finished group (head packet modified in place) and its vnet header.
void FinishGroup(Group &g, uint8_t *h) {
  const TcpSeg &a = g.head;
  if (g.count == 1) {
    // A verified segment travels alone: tell the kernel its checksum is already checked.
    EncodeVnet(g.vnet, a.candidate ? VIRTIO_NET_HDR_F_DATA_VALID : 0, VIRTIO_NET_HDR_GSO_NONE, 0, 0, 0, 0);
    return;
  }
  if (a.version == 4) {
    Put16(h + 2, (uint32_t)g.total);
    SetIpv4HeaderChecksum(h, a.iphl);
  } else {
    Put16(h + 4, (uint32_t)(g.total - 40));
  }
  uint8_t *t = h + a.iphl;
  if (g.pshEnd) t[13] |= kTcpPsh;
  Put16(t + 16, PseudoSum(h, IPPROTO_TCP, g.total - a.iphl));
  EncodeVnet(g.vnet, VIRTIO_NET_HDR_F_NEEDS_CSUM, a.version == 4 ? VIRTIO_NET_HDR_GSO_TCPV4 : VIRTIO_NET_HDR_GSO_TCPV6,
             (uint16_t)(a.iphl + a.thl), (uint16_t)a.plen, (uint16_t)a.iphl, 16);
}

}  // namespace

// Groups packets bufs[0, count) into super-packets; fills `groups` (in order of their head) and
// `next` (member chain). Head packets of multi-segment groups are rewritten in place.
static void GroPlan(uint8_t *const *bufs, const int32_t *lens, int count, std::vector<Group> *groups, std::vector<int> *next) {
  groups->clear();
  next->assign((size_t)count, -1);
  for (int i = 0; i < count; i++) {
    const uint8_t *p = bufs[i];
    TcpSeg s = ParseTcp(p, (size_t)lens[i]);
    if (s.tcp) {
      // Only the newest group of this flow may take it: never reorder within a flow.
      for (size_t k = groups->size(); k-- > 0;) {
        Group &g = (*groups)[k];
        if (!SameFlow(g.head, s)) continue;
        if (CanAppend(g, bufs[g.first], s, p)) {
          (*next)[(size_t)g.tail] = i;
          g.tail = i;
          g.count++;
          g.nextSeq = s.seq + (uint32_t)s.plen;
          g.nextId = (uint16_t)(g.nextId + 1);
          g.lastPlen = s.plen;
          g.total += s.plen;
          g.pshEnd = (s.flags & kTcpPsh) != 0;
          s.tcp = false;  // consumed
        }
        break;
      }
      if (!s.tcp) continue;
    }
    Group g;
    g.first = g.tail = i;
    g.count = 1;
    g.head = s;
    g.nextSeq = s.seq + (uint32_t)s.plen;
    g.nextId = s.version == 4 && lens[i] >= 20 ? (uint16_t)(Be16(p + 4) + 1) : 0;
    g.lastPlen = s.plen;
    g.total = (size_t)lens[i];
    g.pshEnd = (s.flags & kTcpPsh) != 0;
    groups->push_back(g);
  }
  for (Group &g : *groups) FinishGroup(g, bufs[g.first]);
}

namespace {

Napi::Value ThrowType(Napi::Env env, const char *msg) {
  Napi::TypeError::New(env, msg).ThrowAsJavaScriptException();
  return env.Undefined();
}

Napi::Value ThrowErrnoOff(Napi::Env env, const char *what, int err) {
  Napi::Error e = Napi::Error::New(env, std::string(what) + ": " + strerror(err));
  e.Set("code", Napi::String::New(env, err == EIO ? "EIO" : err == EINVAL ? "EINVAL" : err == EBADF ? "EBADF" : "EUNKNOWN"));
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("syscall", Napi::String::New(env, what));
  e.ThrowAsJavaScriptException();
  return env.Undefined();
}

bool U8(const Napi::Value &v, uint8_t **data, size_t *len) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) return false;
  Napi::Uint8Array u = v.As<Napi::Uint8Array>();
  *data = u.Data();
  *len = u.ByteLength();
  return true;
}

bool I32(const Napi::Value &v, int32_t **data, size_t *len) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) return false;
  Napi::Int32Array a = v.As<Napi::Int32Array>();
  *data = a.Data();
  *len = a.ElementLength();
  return true;
}

bool Slots(Napi::Env env, const Napi::Value &v, uint32_t max, std::vector<uint8_t *> *ptrs, std::vector<size_t> *caps) {
  if (!v.IsArray()) {
    ThrowType(env, "buffers must be an array of Buffer/Uint8Array");
    return false;
  }
  Napi::Array arr = v.As<Napi::Array>();
  uint32_t n = arr.Length() < max ? arr.Length() : max;
  ptrs->resize(n);
  caps->resize(n);
  for (uint32_t i = 0; i < n; i++) {
    if (!U8(arr.Get(i), &(*ptrs)[i], &(*caps)[i])) {
      ThrowType(env, "buffers must be an array of Buffer/Uint8Array");
      return false;
    }
  }
  return true;
}

// Marshals slots [ptrs->size(), upto) of `arr` (a prefix was marshalled before): a lone packet
// touches one element, not the whole pool.
bool MoreSlots(Napi::Env env, Napi::Array arr, uint32_t upto, std::vector<uint8_t *> *ptrs, std::vector<size_t> *caps) {
  for (uint32_t i = (uint32_t)ptrs->size(); i < upto; i++) {
    uint8_t *d;
    size_t l;
    if (!U8(arr.Get(i), &d, &l)) {
      ThrowType(env, "buffers must be an array of Buffer/Uint8Array");
      return false;
    }
    ptrs->push_back(d);
    caps->push_back(l);
  }
  return true;
}

// Offload counters the JS side collects (and zeroes) after each call: indices into `stats`.
enum Stat { kPendingLen = 0, kPendingNext = 1, kGsoPackets = 2, kGsoSegments = 3, kRefused = 4, kGroWrites = 5, kGroSegments = 6, kStatCount = 8 };

thread_local std::vector<uint8_t *> tPtrs;
thread_local std::vector<size_t> tCaps;

// readBatchVnet(fd, buffers, lengths, scratch, stats, maxReads?) -> segments
// Reads virtio-net-header packets into `scratch` (>= 64 KiB + 10) and splits them into the slots.
// A super-packet whose segments do not all fit stays in scratch (stats[0] = its length, stats[1] =
// the next segment) and is finished by the next call before anything new is read. With maxReads
// (> 0) at most that many read()s: a caller expecting a lone packet spares the read that would
// only return EAGAIN (the descriptor stays readable if more is queued).
Napi::Value ReadBatchVnet(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int32_t *lens, *st;
  size_t nlens, nst, slen;
  uint8_t *scratch;
  if (info.Length() < 5 || !info[0].IsNumber() || !info[1].IsArray() || !I32(info[2], &lens, &nlens) || !U8(info[3], &scratch, &slen) ||
      !I32(info[4], &st, &nst) || nst < kStatCount || slen < kVnetLen + kMaxIpLen)
    return ThrowType(env, "readBatchVnet(fd, buffers, lengths, scratch >= 65545 octets, stats: Int32Array(8), maxReads?)");
  int fd = info[0].As<Napi::Number>().Int32Value();
  int reads = info.Length() > 5 && info[5].IsNumber() ? info[5].As<Napi::Number>().Int32Value() : 0;
  if (reads <= 0) reads = INT32_MAX;
  Napi::Array arr = info[1].As<Napi::Array>();
  const uint32_t nslots = arr.Length() < nlens ? arr.Length() : (uint32_t)nlens;
  tPtrs.clear();
  tCaps.clear();
  int max = (int)nslots;
  int n = 0;
  while (n < max) {
    if (st[kPendingLen] == 0) {
      if (reads == 0) break;
      reads--;
      ssize_t r = read(fd, scratch, slen);
      if (r < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        if (n > 0) break;
        return ThrowErrnoOff(env, "read", errno);
      }
      if ((size_t)r <= kVnetLen) {
        st[kRefused]++;
        continue;
      }
      st[kPendingLen] = (int32_t)r;
      st[kPendingNext] = 0;
    }
    VnetHdr vh = DecodeVnet(scratch);
    // slots marshalled as needed: one for a plain packet, all that are left for a super-packet
    if (!MoreSlots(env, arr, (vh.gsoType & (uint8_t)~VIRTIO_NET_HDR_GSO_ECN) == VIRTIO_NET_HDR_GSO_NONE ? (uint32_t)n + 1 : nslots, &tPtrs, &tCaps)) return env.Undefined();
    int total = 0;
    int got = GsoSplit(vh, scratch + kVnetLen, (size_t)st[kPendingLen] - kVnetLen, st[kPendingNext], tPtrs.data() + n, tCaps.data() + n, lens + n, max - n, &total);
    if (got < 0) {
      st[kRefused]++;
      st[kPendingLen] = 0;
      continue;
    }
    if (st[kPendingNext] == 0 && total > 1) {
      st[kGsoPackets]++;
      st[kGsoSegments] += total;
    }
    st[kPendingNext] += got;
    n += got;
    if (st[kPendingNext] >= total) st[kPendingLen] = 0;
    else break;  // slots full; the rest next call
  }
  return Napi::Number::New(env, n);
}

thread_local std::vector<Group> tGroups;
thread_local std::vector<int> tNext;
thread_local std::vector<iovec> tIov;

// writeBatchVnet(fd, buffers, lengths, count, stats) -> packets written (segments, as without
// offload). Coalesces TCP segments (GroPlan) and writes each super-packet with one writev.
// Headers of coalesced packets are rewritten in the caller's buffers.
Napi::Value WriteBatchVnet(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int32_t *lens, *st;
  size_t nlens, nst;
  if (info.Length() < 5 || !info[0].IsNumber() || !info[3].IsNumber() || !I32(info[2], &lens, &nlens) || !I32(info[4], &st, &nst) || nst < kStatCount)
    return ThrowType(env, "writeBatchVnet(fd, buffers, lengths, count, stats: Int32Array(8))");
  int fd = info[0].As<Napi::Number>().Int32Value();
  int count = info[3].As<Napi::Number>().Int32Value();
  if (count < 0 || (size_t)count > nlens) return ThrowType(env, "count exceeds buffers/lengths");
  if (!Slots(env, info[1], (uint32_t)count, &tPtrs, &tCaps)) return env.Undefined();
  if ((size_t)count > tPtrs.size()) return ThrowType(env, "count exceeds buffers/lengths");
  for (int i = 0; i < count; i++)
    if (lens[i] < 0 || (size_t)lens[i] > tCaps[(size_t)i]) return ThrowType(env, "length out of range for its buffer");
  GroPlan(tPtrs.data(), lens, count, &tGroups, &tNext);
  int written = 0;
  for (Group &g : tGroups) {
    tIov.clear();
    tIov.push_back(iovec{g.vnet, kVnetLen});
    tIov.push_back(iovec{tPtrs[(size_t)g.first], (size_t)lens[g.first]});
    size_t hl = g.head.iphl + g.head.thl;
    for (int m = tNext[(size_t)g.first]; m >= 0; m = tNext[(size_t)m]) tIov.push_back(iovec{tPtrs[(size_t)m] + hl, (size_t)lens[m] - hl});
    ssize_t r;
    do {
      r = writev(fd, tIov.data(), (int)tIov.size());
    } while (r < 0 && errno == EINTR);
    if (r < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || written > 0) break;
      return ThrowErrnoOff(env, "write", errno);
    }
    written += g.count;
    if (g.count > 1) {
      st[kGroWrites]++;
      st[kGroSegments] += g.count;
    }
  }
  return Napi::Number::New(env, written);
}

// gsoSplit(packet: vnet header ‖ IP packet, length, buffers, lengths) -> segments, or -1 when refused.
// The splitting readBatchVnet does, for tests.
Napi::Value GsoSplitJs(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  uint8_t *pkt;
  size_t plen, nlens;
  int32_t *lens;
  if (info.Length() < 4 || !U8(info[0], &pkt, &plen) || !info[1].IsNumber() || !I32(info[3], &lens, &nlens)) return ThrowType(env, "gsoSplit(packet, length, buffers, lengths)");
  int64_t len = info[1].As<Napi::Number>().Int64Value();
  if (len < (int64_t)kVnetLen || (size_t)len > plen) return ThrowType(env, "length out of range");
  if (!Slots(env, info[2], (uint32_t)nlens, &tPtrs, &tCaps)) return env.Undefined();
  int total = 0;
  int n = GsoSplit(DecodeVnet(pkt), pkt + kVnetLen, (size_t)len - kVnetLen, 0, tPtrs.data(), tCaps.data(), lens, (int)tPtrs.size(), &total);
  if (n >= 0 && n < total) return ThrowType(env, "not enough buffers for every segment");
  return Napi::Number::New(env, n);
}

// groCoalesce(buffers, lengths, count) -> Buffer[] (vnet header ‖ IP packet, as writeBatchVnet writes them), for tests.
Napi::Value GroCoalesceJs(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int32_t *lens;
  size_t nlens;
  if (info.Length() < 3 || !I32(info[1], &lens, &nlens) || !info[2].IsNumber()) return ThrowType(env, "groCoalesce(buffers, lengths, count)");
  int count = info[2].As<Napi::Number>().Int32Value();
  if (!Slots(env, info[0], (uint32_t)nlens, &tPtrs, &tCaps)) return env.Undefined();
  if (count < 0 || (size_t)count > tPtrs.size()) return ThrowType(env, "count exceeds buffers/lengths");
  for (int i = 0; i < count; i++)
    if (lens[i] < 0 || (size_t)lens[i] > tCaps[(size_t)i]) return ThrowType(env, "length out of range for its buffer");
  GroPlan(tPtrs.data(), lens, count, &tGroups, &tNext);
  Napi::Array outArr = Napi::Array::New(env, tGroups.size());
  uint32_t k = 0;
  for (Group &g : tGroups) {
    size_t hl = g.head.iphl + g.head.thl;
    std::vector<uint8_t> v(g.vnet, g.vnet + kVnetLen);
    v.insert(v.end(), tPtrs[(size_t)g.first], tPtrs[(size_t)g.first] + lens[g.first]);
    for (int m = tNext[(size_t)g.first]; m >= 0; m = tNext[(size_t)m]) v.insert(v.end(), tPtrs[(size_t)m] + hl, tPtrs[(size_t)m] + lens[m]);
    outArr.Set(k++, Napi::Buffer<uint8_t>::Copy(env, v.data(), v.size()));
  }
  return outArr;
}

}  // namespace

void InitOffload(Napi::Env env, Napi::Object exports) {
  exports.Set("readBatchVnet", Napi::Function::New<ReadBatchVnet>(env, "readBatchVnet"));
  exports.Set("writeBatchVnet", Napi::Function::New<WriteBatchVnet>(env, "writeBatchVnet"));
  exports.Set("gsoSplit", Napi::Function::New<GsoSplitJs>(env, "gsoSplit"));
  exports.Set("groCoalesce", Napi::Function::New<GroCoalesceJs>(env, "groCoalesce"));
}

}  // namespace tunsec
