// tunsec native addon: UDP GRO receive (Linux >= 5.0) for ESP-in-UDP (RFC 3948) on the NAT-T socket.
//
// With UDP_GRO set on a socket the kernel hands over a coalesced datagram of up to 64 KiB: the
// datagrams of one flow that GRO (or a sender's UDP GSO, on a path that kept it whole) joined,
// all of `gso_size` octets but the last, which may be shorter. A (SOL_UDP, UDP_GRO) control
// message carries gso_size; a datagram without it is one datagram. This file receives with
// recvmmsg into a receive area of 64 KiB slots and copies each datagram's segments into the
// caller's packet slots, one segment per slot, with the sender's address, so the caller sees
// what a socket without GRO would have delivered: every segment is then demultiplexed on its own
// (non-ESP marker, keepalive, ESP; RFC 3948 §2.2) — GRO may join an IKE message or a keepalive to
// ESP packets of the same flow.
//
// JS API (src/native/addon.ts has the typings):
//   udpRecvGro(fd, area, state, buffers, lengths, addrs) -> segments
//     area: Uint8Array of k * 65536 octets (k datagrams per recvmmsg); state: Int32Array of
//     GroState.Header + k * GroState.PerMsg slots, zeroed once and then only passed back: it holds the
//     datagrams received but not yet split (when the caller's slots ran out), and counters
//     (GroState below) that the caller reads and zeroes. addrs: 20 octets per slot as recvBatch.
//     Returns the segments put in slots (0: nothing to read). A segment longer than its slot is
//     dropped and counted. Reads again only while slots remain and the last recvmmsg filled the
//     area (no EAGAIN round trip after a short read).
//   udpGroSplit(datagram, length, gsoSize, buffers, lengths) -> segments
//     The split alone (for tests): segments of gsoSize octets, the last the rest.
#include <napi.h>

#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <string>
#include <vector>

#include "tunsec_napi.h"

namespace tunsec {

namespace {

constexpr size_t kRoom = 65536;
constexpr size_t kAddr = kAddrSlot;

// Int32 slots of `state`.
enum GroState : size_t {
  kHeld = 0,        // datagrams in the area not yet fully split
  kNext = 1,        // the datagram being split
  kOffset = 2,      // its next segment's offset
  kCoalesced = 3,   // counter: datagrams that carried more than one segment
  kSegments = 4,    // counter: segments in those
  kDatagrams = 5,   // counter: datagrams received (coalesced or not)
  kDropped = 6,     // counter: truncated datagrams, segments longer than their slot
  kHeader = 8,
  // per datagram: [0] length, [1] gso_size (0: none), [2..7) the 20-octet address
  kPerMsg = 8,
};

Napi::Value Throw(Napi::Env env, const char *msg) {
  Napi::TypeError::New(env, msg).ThrowAsJavaScriptException();
  return env.Undefined();
}




// The segment of a datagram of `len` octets at `off` with `gso` (0: none): its length.
inline size_t SegmentAt(size_t len, size_t gso, size_t off) {
  const size_t rest = len - off;
  return gso == 0 || gso >= rest ? rest : gso;
}

Napi::Value UdpRecvGro(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  napi_env e = env;
  const char *usage = "udpRecvGro(fd, area, state, buffers, lengths, addrs)";
  uint8_t *area, *addrs;
  int32_t *state, *lengths;
  size_t areaLen, stateLen, nLengths, addrsLen;
  if (info.Length() < 6 || !info[0].IsNumber() || !info[3].IsArray() || !Typed(e, info[1], napi_uint8_array, &area, &areaLen) ||
      !Typed(e, info[2], napi_int32_array, &state, &stateLen) || !Typed(e, info[4], napi_int32_array, &lengths, &nLengths) ||
      !Typed(e, info[5], napi_uint8_array, &addrs, &addrsLen) || stateLen < kHeader)
    return Throw(env, usage);
  const int fd = info[0].As<Napi::Number>().Int32Value();
  size_t k = areaLen / kRoom;
  if ((stateLen - kHeader) / kPerMsg < k) k = (stateLen - kHeader) / kPerMsg;
  if (k == 0) return Throw(env, "udpRecvGro: area or state too small for one datagram");
  uint32_t nBuffers;
  if (napi_get_array_length(e, info[3], &nBuffers) != napi_ok) return Throw(env, usage);
  size_t slots = nLengths;
  if (nBuffers < slots) slots = nBuffers;
  if (addrsLen / kAddr < slots) slots = addrsLen / kAddr;
  if ((size_t)state[kHeld] > k || state[kNext] < 0 || state[kNext] > state[kHeld] || state[kOffset] < 0)
    return Throw(env, "udpRecvGro: corrupt state");

  size_t n = 0;
  bool full = false;  // the last recvmmsg filled the area: more may be queued
  bool first = true;
  for (;;) {
    // split what is held into the slots
    while (n < slots && state[kNext] < state[kHeld]) {
      const size_t m = (size_t)state[kNext];
      int32_t *msg = state + kHeader + m * kPerMsg;
      const size_t len = (size_t)msg[0], gso = (size_t)msg[1];
      size_t off = (size_t)state[kOffset];
      if (off > len) off = len;
      const size_t seg = SegmentAt(len, gso, off);
      uint8_t *dst;
      size_t room;
      if (!Element(e, info[3], (uint32_t)n, &dst, &room)) return Throw(env, "udpRecvGro: buffers must be an array of Uint8Array");
      if (seg <= room) {
        memcpy(dst, area + m * kRoom + off, seg);
        lengths[n] = (int32_t)seg;
        memcpy(addrs + n * kAddr, msg + 2, kAddr);
        n++;
      } else {
        state[kDropped]++;
      }
      off += seg;
      if (off >= len) {
        state[kNext] = (int32_t)(m + 1);
        state[kOffset] = 0;
      } else {
        state[kOffset] = (int32_t)off;
      }
    }
    if (n == slots || (!first && !full)) break;
    first = false;
    // everything held is split: receive more
    state[kHeld] = state[kNext] = state[kOffset] = 0;
    // reused between calls: a lone datagram allocates nothing
    thread_local std::vector<mmsghdr> msgs;
    thread_local std::vector<iovec> iov;
    thread_local std::vector<sockaddr_storage> names;
    constexpr size_t cspace = 64;  // CMSG_SPACE(sizeof(int)) and room for one more
    thread_local std::vector<unsigned char> control;
    if (msgs.size() < k) {
      msgs.resize(k);
      iov.resize(k);
      names.resize(k);
      control.resize(k * cspace);
    }
    for (size_t i = 0; i < k; i++) {
      iov[i].iov_base = area + i * kRoom;
      iov[i].iov_len = kRoom;
      memset(&msgs[i], 0, sizeof msgs[i]);
      msgs[i].msg_hdr.msg_name = &names[i];
      msgs[i].msg_hdr.msg_namelen = sizeof names[i];
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
      msgs[i].msg_hdr.msg_control = control.data() + i * cspace;
      msgs[i].msg_hdr.msg_controllen = cspace;
    }
    int r;
    do {
      r = recvmmsg(fd, msgs.data(), (unsigned)k, MSG_DONTWAIT, nullptr);
    } while (r < 0 && errno == EINTR);
    if (r < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || n > 0) break;
      Napi::Error err = Napi::Error::New(env, std::string("recvmmsg: ") + strerror(errno));
      err.Set("errno", Napi::Number::New(env, errno));
      err.ThrowAsJavaScriptException();
      return env.Undefined();
    }
    if (r == 0) break;
    full = (size_t)r == k;
    size_t kept = 0;
    for (int i = 0; i < r; i++) {
      msghdr &h = msgs[(size_t)i].msg_hdr;
      state[kDatagrams]++;
      if (h.msg_flags & MSG_TRUNC) {
        state[kDropped]++;
        continue;
      }
      int gso = 0;
      for (cmsghdr *c = CMSG_FIRSTHDR(&h); c != nullptr; c = CMSG_NXTHDR(&h, c))
        if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO && c->cmsg_len >= CMSG_LEN(sizeof(int))) memcpy(&gso, CMSG_DATA(c), sizeof gso);
      const size_t len = msgs[(size_t)i].msg_len;
      if (kept != (size_t)i) memmove(area + kept * kRoom, area + (size_t)i * kRoom, len);
      int32_t *msg = state + kHeader + kept * kPerMsg;
      msg[0] = (int32_t)len;
      msg[1] = gso > 0 && (size_t)gso < len ? gso : 0;
      PutAddr(reinterpret_cast<uint8_t *>(msg + 2), names[(size_t)i]);
      if (msg[1] != 0) {
        state[kCoalesced]++;
        state[kSegments] += (int32_t)((len + (size_t)gso - 1) / (size_t)gso);
      }
      kept++;
    }
    state[kHeld] = (int32_t)kept;
  }
  return Napi::Number::New(env, (double)n);
}

Napi::Value UdpGroSplit(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  napi_env e = env;
  const char *usage = "udpGroSplit(datagram, length, gsoSize, buffers, lengths)";
  uint8_t *dgram;
  int32_t *lengths;
  size_t dgramLen, nLengths;
  if (info.Length() < 5 || !info[1].IsNumber() || !info[2].IsNumber() || !info[3].IsArray() ||
      !Typed(e, info[0], napi_uint8_array, &dgram, &dgramLen) || !Typed(e, info[4], napi_int32_array, &lengths, &nLengths))
    return Throw(env, usage);
  const int64_t len = info[1].As<Napi::Number>().Int64Value(), gso = info[2].As<Napi::Number>().Int64Value();
  if (len < 0 || (size_t)len > dgramLen || gso < 0) return Throw(env, "udpGroSplit: length out of range");
  size_t n = 0, off = 0;
  while (off < (size_t)len || (len == 0 && n == 0)) {
    const size_t seg = SegmentAt((size_t)len, (size_t)gso, off);
    uint8_t *dst;
    size_t room;
    if (n >= nLengths || !Element(e, info[3], (uint32_t)n, &dst, &room) || seg > room) return Throw(env, "udpGroSplit: not enough room");
    memcpy(dst, dgram + off, seg);
    lengths[n++] = (int32_t)seg;
    off += seg;
    if (len == 0) break;
  }
  return Napi::Number::New(env, (double)n);
}

}  // namespace

// Called from the module's Init (tunsec_native.cc).
void InitUdpGro(Napi::Env env, Napi::Object exports) {
  exports.Set("udpRecvGro", Napi::Function::New<UdpRecvGro>(env, "udpRecvGro"));
  exports.Set("udpGroSplit", Napi::Function::New<UdpGroSplit>(env, "udpGroSplit"));
}

}  // namespace tunsec
