// tunsec native addon: ESP (RFC 4303) with AES-GCM-16 (RFC 4106) sealed and opened a batch at a
// time, and the sealed batch sent in the same call (sendmmsg; for ESP-in-UDP optionally as UDP GSO
// super-datagrams). The JS side (src/esp/engine.ts, src/esp/io.ts) keeps every decision: SPD,
// SA choice, sequence numbers, lifetimes, anti-replay, counters; this file only does the octets
// and the crypto, with the per-SA EVP contexts of tunsec_aead.cc (looked up by AeadKey.handle).
//
// JS API (src/native/addon.ts has the typings):
//   espSealBatch(src, dst, lengths, desc, count, fd, address, port, gso, stats) -> number
//     For i < count, with d = desc[i*10 .. i*10+10) (Uint32Array):
//       d[0] srcOff, d[1] payloadLen: the payload is src[i][srcOff, srcOff+payloadLen)
//       d[2] Next Header, d[3] key handle, d[4] SPI, d[5] seq high, d[6] seq low,
//       d[7] espOff: the ESP packet is written at dst[i][espOff) (what precedes it — a transport
//            header or an outer header — the caller wrote), d[8] flags (bit 0: ESN; bit 1: dst[i]
//            is already sealed, send it as it is)
//     IV = the 64-bit sequence number (RFC 4106 §3.1: unique per packet of the SA), padding the
//     minimum for 4-octet alignment (1, 2, 3, …). lengths[i] becomes espOff + the ESP packet's
//     length, or -1 when it could not be sealed (unknown key, buffers too small), counted in
//     stats[3]. With fd >= 0 the sealed packets are then sent to (address, port) with sendmmsg;
//     gso != 0 (a UDP socket) sends runs of equal-size packets as one datagram with UDP_SEGMENT.
//     Returns the packets sent (fd >= 0) or sealed (fd < 0).
//     stats (Int32Array >= 4, added to): [0] GSO datagrams sent, [1] packets in them, [2] set to 1
//     when the kernel refused GSO (EIO: the route's device cannot segment UDP): those packets were
//     resent one by one and the caller should stop asking for GSO on this socket, [3] seal failures.
//   espOpenBatch(bufs, desc, count) -> number of packets opened
//     For i < count, d = desc[i*10 ..): in: d[0] espOff, d[1] espEnd (bufs[i][espOff, espEnd) is
//     the ESP packet), d[2] key handle, d[3] seq high (the anti-replay code's inference; ignored
//     without ESN), d[4] flags (bit 0 ESN; bits 8-15 mode: 0 = open only, 1 = tunnel: the inner
//     packet is moved to bufs[i][0), 2 = IPv4 transport: bufs[i] is the received IPv4 packet with
//     ESP at espOff, decapsulated in place at 0). Out: d[5] status (EspOpenStatus below), d[6] Next
//     Header, d[7] offset and d[8] length of the result (mode 0: the payload; else the packet at 0).
//     A failed ICV leaves the ciphertext as it was.
#include <napi.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <string>
#include <vector>

#include "tunsec_esp.h"
#include "tunsec_napi.h"

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef SOL_UDP
#define SOL_UDP 17
#endif

namespace tunsec {

namespace {

constexpr size_t kDesc = 10;
constexpr size_t kEspHeader = 8;
constexpr size_t kIv = 8;
constexpr size_t kIcv = 16;
// UDP_MAX_SEGMENTS is 64 before Linux 5.5 (128 after): stay within the older limit.
constexpr size_t kMaxGsoSegments = 64;
// One UDP datagram's payload (IPv4: 65535 - 20 - 8), rounded down for headroom.
constexpr size_t kMaxGsoBytes = 65000;

enum EspOpenStatus : uint32_t {
  kStOk = 0,
  kStTruncated = 1,
  kStIcv = 2,
  kStPadding = 3,
  kStDummy = 4,
  kStMalformed = 5,       // authenticated, but the inner packet is not what the mode expects
  kStNoKey = 6,
  kStFrameMalformed = 7,  // the IPv4 packet around ESP is malformed (before any ICV check)
};

inline void Put32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

inline uint16_t Get16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }

uint16_t Ipv4HeaderChecksum(const uint8_t *h, size_t ihl) {
  uint32_t sum = 0;
  for (size_t i = 0; i < ihl; i += 2) sum += (i == 10) ? 0 : Get16(h + i);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)~sum;
}

Napi::Value Throw(Napi::Env env, const char *msg) {
  Napi::TypeError::New(env, msg).ThrowAsJavaScriptException();
  return env.Undefined();
}




// A small cache of the last key looked up: a batch is mostly one SA.
struct KeyCache {
  explicit KeyCache(EspKeyDirection d) : dir(d) {}
  EspKeyDirection dir;
  uint32_t handle = 0;
  EspKeyView view;
  bool ok = false;
  bool Get(uint32_t h) {
    if (h != handle || handle == 0) {
      handle = h;
      ok = h != 0 && EspKeyLookup(h, dir, &view);
    }
    return ok;
  }
};

size_t PadLength(size_t payloadLen) { return (4 - ((payloadLen + 2) & 3)) & 3; }

// Seal one packet; returns the ESP length or 0.
size_t SealOne(const EspKeyView &k, const uint8_t *src, size_t payloadLen, uint8_t nextHeader, uint32_t spi, uint32_t hi, uint32_t lo,
               bool esn, uint8_t *out, size_t room) {
  const size_t pad = PadLength(payloadLen);
  const size_t ptLen = payloadLen + pad + 2;
  const size_t total = kEspHeader + kIv + ptLen + kIcv;
  if (total > room || ptLen > (size_t)INT32_MAX) return 0;
  Put32(out, spi);
  Put32(out + 4, lo);
  uint8_t *iv = out + kEspHeader;
  Put32(iv, hi);
  Put32(iv + 4, lo);
  uint8_t *pt = iv + kIv;
  memmove(pt, src, payloadLen);
  for (size_t i = 0; i < pad; i++) pt[payloadLen + i] = (uint8_t)(i + 1);
  pt[payloadLen + pad] = (uint8_t)pad;
  pt[payloadLen + pad + 1] = nextHeader;
  uint8_t aad[12];
  Put32(aad, spi);
  size_t aadLen = 8;
  if (esn) {
    Put32(aad + 4, hi);
    Put32(aad + 8, lo);
    aadLen = 12;
  } else {
    Put32(aad + 4, lo);
  }
  unsigned char nonce[12];
  memcpy(nonce, k.salt, 4);
  memcpy(nonce + 4, iv, kIv);
  int outl = 0;
  const int len = (int)ptLen;
  bool ok = EVP_EncryptInit_ex(k.ctx, nullptr, nullptr, nullptr, nonce) == 1 &&
            EVP_EncryptUpdate(k.ctx, nullptr, &outl, aad, (int)aadLen) == 1 && EVP_EncryptUpdate(k.ctx, pt, &outl, pt, len) == 1 &&
            EVP_EncryptFinal_ex(k.ctx, pt + len, &outl) == 1 &&
            EVP_CIPHER_CTX_ctrl(k.ctx, EVP_CTRL_AEAD_GET_TAG, (int)kIcv, pt + len) == 1;
  if (!ok) {
    OPENSSL_cleanse(out, total);
    return 0;
  }
  return total;
}

bool ParseDest(const std::string &s, int port, sockaddr_storage *ss, socklen_t *sl) {
  memset(ss, 0, sizeof *ss);
  auto *s4 = reinterpret_cast<sockaddr_in *>(ss);
  auto *s6 = reinterpret_cast<sockaddr_in6 *>(ss);
  if (inet_pton(AF_INET, s.c_str(), &s4->sin_addr) == 1) {
    s4->sin_family = AF_INET;
    s4->sin_port = htons((uint16_t)port);
    *sl = sizeof *s4;
    return true;
  }
  if (inet_pton(AF_INET6, s.c_str(), &s6->sin6_addr) == 1) {
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons((uint16_t)port);
    *sl = sizeof *s6;
    return true;
  }
  return false;
}

struct Outgoing {
  uint8_t *data;
  size_t len;
};

// sendmmsg of `pkts`, one message each; returns how many left (stops on EAGAIN/ENOBUFS or an
// error after the first message; an error on the first message is returned as -errno).
int SendPlain(int fd, const sockaddr_storage &ss, socklen_t sl, const Outgoing *pkts, size_t n) {
  std::vector<iovec> iov(n);
  std::vector<mmsghdr> msgs(n);
  for (size_t i = 0; i < n; i++) {
    iov[i].iov_base = pkts[i].data;
    iov[i].iov_len = pkts[i].len;
    memset(&msgs[i], 0, sizeof msgs[i]);
    msgs[i].msg_hdr.msg_name = const_cast<sockaddr_storage *>(&ss);
    msgs[i].msg_hdr.msg_namelen = sl;
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  size_t done = 0;
  while (done < n) {
    int r = sendmmsg(fd, msgs.data() + done, (unsigned)(n - done), 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS || done > 0) break;
      return -errno;
    }
    done += (size_t)r;
  }
  return (int)done;
}

// UDP GSO (Linux >= 4.18): each run of packets of one size (the last of a run may be shorter)
// goes as one sendmsg with UDP_SEGMENT = that size; the kernel (or the NIC) cuts it into the
// datagrams a plain send would have made. Returns packets sent; *refused on EIO (the device
// cannot do it: the rest is sent plainly).
int SendGso(int fd, const sockaddr_storage &ss, socklen_t sl, const Outgoing *pkts, size_t n, int32_t *stats, bool *refused) {
  struct Msg {
    size_t first, count;
  };
  std::vector<Msg> runs;
  for (size_t i = 0; i < n;) {
    const size_t seg = pkts[i].len;
    size_t j = i + 1, bytes = seg;
    while (j < n && j - i < kMaxGsoSegments && pkts[j].len <= seg && bytes + pkts[j].len <= kMaxGsoBytes) {
      bytes += pkts[j].len;
      j++;
      if (pkts[j - 1].len < seg) break;  // only the last segment may be shorter
    }
    runs.push_back({i, j - i});
    i = j;
  }
  std::vector<iovec> iov(n);
  std::vector<mmsghdr> msgs(runs.size());
  const size_t cspace = CMSG_SPACE(sizeof(uint16_t));
  std::vector<unsigned char> control(runs.size() * cspace, 0);
  for (size_t i = 0; i < n; i++) {
    iov[i].iov_base = pkts[i].data;
    iov[i].iov_len = pkts[i].len;
  }
  for (size_t m = 0; m < runs.size(); m++) {
    memset(&msgs[m], 0, sizeof msgs[m]);
    msghdr &h = msgs[m].msg_hdr;
    h.msg_name = const_cast<sockaddr_storage *>(&ss);
    h.msg_namelen = sl;
    h.msg_iov = &iov[runs[m].first];
    h.msg_iovlen = runs[m].count;
    if (runs[m].count > 1) {
      h.msg_control = control.data() + m * cspace;
      h.msg_controllen = cspace;
      cmsghdr *c = CMSG_FIRSTHDR(&h);
      c->cmsg_level = SOL_UDP;
      c->cmsg_type = UDP_SEGMENT;
      c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
      const uint16_t seg = (uint16_t)pkts[runs[m].first].len;
      memcpy(CMSG_DATA(c), &seg, sizeof seg);
    }
  }
  size_t done = 0, sent = 0;
  while (done < runs.size()) {
    int r = sendmmsg(fd, msgs.data() + done, (unsigned)(runs.size() - done), 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EIO) {
        // the device refuses segmentation offload: what is left goes the plain way, once
        *refused = true;
        const size_t from = runs[done].first;
        int p = SendPlain(fd, ss, sl, pkts + from, n - from);
        return (int)sent + (p > 0 ? p : 0);
      }
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS || sent > 0) break;
      return -errno;
    }
    for (int k = 0; k < r; k++) {
      const Msg &run = runs[done + (size_t)k];
      sent += run.count;
      if (run.count > 1) {
        stats[0]++;
        stats[1] += (int32_t)run.count;
      }
    }
    done += (size_t)r;
  }
  return (int)sent;
}

Napi::Value EspSealBatch(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  napi_env e = env;
  const char *usage = "espSealBatch(src, dst, lengths, desc, count, fd, address, port, gso, stats)";
  if (info.Length() < 10 || !info[0].IsArray() || !info[1].IsArray() || !info[4].IsNumber() || !info[5].IsNumber() || !info[7].IsNumber() ||
      !info[8].IsNumber())
    return Throw(env, usage);
  int32_t *lengths, *stats;
  uint32_t *desc;
  size_t nLengths, nDesc, nStats;
  if (!Typed(e, info[2], napi_int32_array, &lengths, &nLengths) || !Typed(e, info[3], napi_uint32_array, &desc, &nDesc) ||
      !Typed(e, info[9], napi_int32_array, &stats, &nStats) || nStats < 4)
    return Throw(env, usage);
  const int64_t count = info[4].As<Napi::Number>().Int64Value();
  const int fd = info[5].As<Napi::Number>().Int32Value();
  if (count < 0 || (size_t)count > nLengths || (size_t)count * kDesc > nDesc) return Throw(env, "espSealBatch: count exceeds lengths/desc");
  KeyCache keys(EspKeyDirection::kSeal);
  std::vector<Outgoing> out;
  out.reserve((size_t)count);
  int sealed = 0;
  for (uint32_t i = 0; i < (uint32_t)count; i++) {
    const uint32_t *d = desc + (size_t)i * kDesc;
    uint8_t *dst;
    size_t dstLen;
    if (!Element(e, info[1], i, &dst, &dstLen)) return Throw(env, "espSealBatch: dst must be an array of Uint8Array");
    if (d[8] & 2) {
      // sealed by the JS path (a context without a native key): send as it is
      if (lengths[i] >= 0 && (size_t)lengths[i] <= dstLen) {
        out.push_back({dst, (size_t)lengths[i]});
        sealed++;
      }
      continue;
    }
    uint8_t *src;
    size_t srcLen;
    if (!Element(e, info[0], i, &src, &srcLen)) return Throw(env, "espSealBatch: src must be an array of Uint8Array");
    const size_t srcOff = d[0], payloadLen = d[1], espOff = d[7];
    size_t n = 0;
    if (srcOff <= srcLen && payloadLen <= srcLen - srcOff && espOff <= dstLen && keys.Get(d[3]))
      n = SealOne(keys.view, src + srcOff, payloadLen, (uint8_t)d[2], d[4], d[5], d[6], (d[8] & 1) != 0, dst + espOff, dstLen - espOff);
    if (n == 0) {
      lengths[i] = -1;
      stats[3]++;
      continue;
    }
    lengths[i] = (int32_t)(espOff + n);
    out.push_back({dst, espOff + n});
    sealed++;
  }
  if (fd < 0 || out.empty()) return Napi::Number::New(env, fd < 0 ? sealed : 0);
  if (!info[6].IsString()) return Throw(env, usage);
  sockaddr_storage ss;
  socklen_t sl;
  if (!ParseDest(info[6].As<Napi::String>().Utf8Value(), info[7].As<Napi::Number>().Int32Value(), &ss, &sl))
    return Throw(env, "espSealBatch: invalid destination address");
  bool refused = false;
  int r = info[8].As<Napi::Number>().Int32Value() != 0 && out.size() > 1 ? SendGso(fd, ss, sl, out.data(), out.size(), stats, &refused)
                                                                          : SendPlain(fd, ss, sl, out.data(), out.size());
  if (refused) stats[2] = 1;
  if (r < 0) {
    Napi::Error err = Napi::Error::New(env, std::string("sendmmsg: ") + strerror(-r));
    err.Set("errno", Napi::Number::New(env, -r));
    err.ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Number::New(env, r);
}

// Open one ESP packet at p[0, len) in place; sets *nh, *ptOff/*payloadLen relative to p.
uint32_t OpenOne(const EspKeyView &k, uint8_t *p, size_t len, uint32_t hi, bool esn, uint8_t *nh, size_t *payloadLen) {
  if (len < kEspHeader + kIv + 2 + kIcv || len > (size_t)INT32_MAX) return kStTruncated;
  uint8_t aad[12];
  memcpy(aad, p, 4);
  size_t aadLen = 8;
  if (esn) {
    Put32(aad + 4, hi);
    memcpy(aad + 8, p + 4, 4);
    aadLen = 12;
  } else {
    memcpy(aad + 4, p + 4, 4);
  }
  unsigned char nonce[12];
  memcpy(nonce, k.salt, 4);
  memcpy(nonce + 4, p + kEspHeader, kIv);
  uint8_t *ct = p + kEspHeader + kIv;
  const int ctLen = (int)(len - kEspHeader - kIv - kIcv);
  int outl = 0;
  bool ok = EVP_DecryptInit_ex(k.ctx, nullptr, nullptr, nullptr, nonce) == 1 &&
            EVP_CIPHER_CTX_ctrl(k.ctx, EVP_CTRL_AEAD_SET_TAG, (int)kIcv, ct + ctLen) == 1 &&
            EVP_DecryptUpdate(k.ctx, nullptr, &outl, aad, (int)aadLen) == 1 && EVP_DecryptUpdate(k.ctx, ct, &outl, ct, ctLen) == 1 &&
            EVP_DecryptFinal_ex(k.ctx, ct + ctLen, &outl) == 1;
  if (!ok) {
    // the key stream depends on key and nonce only: running it over the plaintext again restores the ciphertext
    bool restored = EVP_DecryptInit_ex(k.ctx, nullptr, nullptr, nullptr, nonce) == 1 && EVP_DecryptUpdate(k.ctx, ct, &outl, ct, ctLen) == 1;
    if (!restored) OPENSSL_cleanse(ct, (size_t)ctLen);
    return kStIcv;
  }
  const size_t pt = (size_t)ctLen;
  *nh = ct[pt - 1];
  const size_t pad = ct[pt - 2];
  if (pad + 2 > pt) return kStPadding;
  const size_t plen = pt - 2 - pad;
  for (size_t i = 0; i < pad; i++)
    if (ct[plen + i] != (uint8_t)(i + 1)) return kStPadding;
  if (*nh == 59) return kStDummy;  // RFC 4303 §2.6
  *payloadLen = plen;
  return kStOk;
}

Napi::Value EspOpenBatch(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  napi_env e = env;
  const char *usage = "espOpenBatch(bufs, desc, count)";
  uint32_t *desc;
  size_t nDesc;
  if (info.Length() < 3 || !info[0].IsArray() || !info[2].IsNumber() || !Typed(e, info[1], napi_uint32_array, &desc, &nDesc))
    return Throw(env, usage);
  const int64_t count = info[2].As<Napi::Number>().Int64Value();
  if (count < 0 || (size_t)count * kDesc > nDesc) return Throw(env, "espOpenBatch: count exceeds desc");
  KeyCache keys(EspKeyDirection::kOpen);
  int opened = 0;
  for (uint32_t i = 0; i < (uint32_t)count; i++) {
    uint32_t *d = desc + (size_t)i * kDesc;
    uint8_t *buf;
    size_t bufLen;
    if (!Element(e, info[0], i, &buf, &bufLen)) return Throw(env, "espOpenBatch: bufs must be an array of Uint8Array");
    size_t espOff = d[0], espEnd = d[1];
    const uint32_t mode = (d[4] >> 8) & 0xff;
    d[5] = kStFrameMalformed;
    d[6] = d[7] = d[8] = 0;
    if (espEnd > bufLen || espOff > espEnd) continue;
    if (mode == 2) {
      // IPv4 transport: the header the raw socket delivered, ESP right after it
      if (espEnd < 20 || (buf[0] >> 4) != 4 || (size_t)(buf[0] & 0x0f) * 4 != espOff || espOff < 20 || buf[9] != 50) continue;
      const size_t total = Get16(buf + 2);
      if (total < espOff || total > espEnd) continue;
      espEnd = total;
    }
    if (!keys.Get(d[2])) {
      d[5] = kStNoKey;
      continue;
    }
    uint8_t nh = 0;
    size_t plen = 0;
    uint32_t st = OpenOne(keys.view, buf + espOff, espEnd - espOff, d[3], (d[4] & 1) != 0, &nh, &plen);
    d[5] = st;
    d[6] = nh;
    if (st != kStOk) continue;
    uint8_t *payload = buf + espOff + kEspHeader + kIv;
    if (mode == 0) {
      d[7] = (uint32_t)(espOff + kEspHeader + kIv);
      d[8] = (uint32_t)plen;
    } else if (mode == 1) {
      // tunnel: Next Header 4 / 41 and an inner packet of that version; TFC padding cut off
      size_t total = 0;
      if (nh == 4 && plen >= 20 && (payload[0] >> 4) == 4) {
        const size_t ihl = (size_t)(payload[0] & 0x0f) * 4, t = Get16(payload + 2);
        if (ihl >= 20 && t >= ihl && t <= plen) total = t;
      } else if (nh == 41 && plen >= 40 && (payload[0] >> 4) == 6) {
        const size_t t = 40 + (size_t)Get16(payload + 4);
        if (t <= plen) total = t;
      }
      if (total == 0) {
        d[5] = kStMalformed;
        continue;
      }
      memmove(buf, payload, total);
      d[7] = 0;
      d[8] = (uint32_t)total;
    } else {
      // IPv4 transport: the payload moves over the ESP header, the header names the upper layer
      memmove(buf + espOff, payload, plen);
      const size_t total = espOff + plen;
      buf[9] = nh;
      buf[2] = (uint8_t)(total >> 8);
      buf[3] = (uint8_t)total;
      const uint16_t c = Ipv4HeaderChecksum(buf, espOff);
      buf[10] = (uint8_t)(c >> 8);
      buf[11] = (uint8_t)c;
      d[7] = 0;
      d[8] = (uint32_t)total;
    }
    opened++;
  }
  return Napi::Number::New(env, opened);
}

}  // namespace

// Called from the module's Init (tunsec_native.cc).
void InitEsp(Napi::Env env, Napi::Object exports) {
  exports.Set("espSealBatch", Napi::Function::New<EspSealBatch>(env, "espSealBatch"));
  exports.Set("espOpenBatch", Napi::Function::New<EspOpenBatch>(env, "espOpenBatch"));
}

}  // namespace tunsec
