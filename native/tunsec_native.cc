// tunsec native addon: Linux TUN device, raw ESP sockets, uv_poll readiness, setsockopt helpers.
//
// Design rules:
//  - every fd is non-blocking; batch calls read/write until EAGAIN or the batch is full, so one
//    JS<->C crossing moves many packets;
//  - no allocation per packet: callers pass preallocated Buffers and an Int32Array of lengths;
//  - every failure is a JS exception "<what>: <strerror>" with .code = "E..." and .errno set;
//    nothing here aborts the process.
#include <napi.h>
#include <uv.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "tunsec_napi.h"

namespace tunsec {
void InitAead(Napi::Env env, Napi::Object exports);     // tunsec_aead.cc
void InitOffload(Napi::Env env, Napi::Object exports);  // tunsec_offload.cc
void InitNotify(Napi::Env env, Napi::Object exports);   // tunsec_notify.cc
void InitEsp(Napi::Env env, Napi::Object exports);      // tunsec_esp.cc
void InitUdpGro(Napi::Env env, Napi::Object exports);   // tunsec_udp_gro.cc
}

// TUN_F_USO4/6 (Linux 6.2) are missing from older uapi headers (UDP_GRO: tunsec_napi.h).
#ifndef TUN_F_USO4
#define TUN_F_USO4 0x20
#endif
#ifndef TUN_F_USO6
#define TUN_F_USO6 0x40
#endif

namespace {

const char *ErrnoName(int e) {
  switch (e) {
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case EINTR: return "EINTR";
    case EBADF: return "EBADF";
    case EAGAIN: return "EAGAIN";
    case EACCES: return "EACCES";
    case EBUSY: return "EBUSY";
    case EEXIST: return "EEXIST";
    case ENODEV: return "ENODEV";
    case EINVAL: return "EINVAL";
    case EMFILE: return "EMFILE";
    case ENOBUFS: return "ENOBUFS";
    case ENOTSOCK: return "ENOTSOCK";
    case EMSGSIZE: return "EMSGSIZE";
    case EPROTONOSUPPORT: return "EPROTONOSUPPORT";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
    case ENETUNREACH: return "ENETUNREACH";
    case EHOSTUNREACH: return "EHOSTUNREACH";
    case ECONNREFUSED: return "ECONNREFUSED";
    case ENOPROTOOPT: return "ENOPROTOOPT";
    case EIO: return "EIO";
    default: return "EUNKNOWN";
  }
}

// Throws "<what>: <strerror(err)>" with code/errno/syscall properties. Returns undefined for `return`.
Napi::Value ThrowErrno(Napi::Env env, const std::string &what, int err) {
  Napi::Error e = Napi::Error::New(env, what + ": " + strerror(err));
  e.Set("code", Napi::String::New(env, ErrnoName(err)));
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("syscall", Napi::String::New(env, what));
  e.ThrowAsJavaScriptException();
  return env.Undefined();
}

Napi::Value ThrowType(Napi::Env env, const char *msg) {
  Napi::TypeError::New(env, msg).ThrowAsJavaScriptException();
  return env.Undefined();
}

bool ArgInt(const Napi::CallbackInfo &info, size_t i, int32_t *out) {
  if (info.Length() <= i || !info[i].IsNumber()) return false;
  *out = info[i].As<Napi::Number>().Int32Value();
  return true;
}

// Collects data pointers of up to `max` Buffers/Uint8Arrays from a JS array.
// Returns false (with a pending exception) on a non-typed-array element.
bool CollectBuffers(Napi::Env env, Napi::Array arr, uint32_t max, std::vector<iovec> *out) {
  uint32_t n = arr.Length();
  if (n > max) n = max;
  out->resize(n);
  for (uint32_t i = 0; i < n; i++) {
    Napi::Value v = arr.Get(i);
    if (!v.IsTypedArray()) {
      ThrowType(env, "buffers must be an array of Buffer/Uint8Array");
      return false;
    }
    Napi::TypedArray ta = v.As<Napi::TypedArray>();
    if (ta.TypedArrayType() != napi_uint8_array) {
      ThrowType(env, "buffers must be an array of Buffer/Uint8Array");
      return false;
    }
    Napi::Uint8Array u = ta.As<Napi::Uint8Array>();
    (*out)[i].iov_base = u.Data();
    (*out)[i].iov_len = u.ByteLength();
  }
  return true;
}

bool GetLengths(Napi::Env env, const Napi::Value &v, int32_t **data, size_t *len) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
    ThrowType(env, "lengths must be an Int32Array");
    return false;
  }
  Napi::Int32Array a = v.As<Napi::Int32Array>();
  *data = a.Data();
  *len = a.ElementLength();
  return true;
}

// ---------------------------------------------------------------------------------------------
// TUN

// tunOpen(name: string, multiQueue: boolean, offload?: boolean) -> { fd, name, offloads }
// With `offload`: IFF_VNET_HDR and TUNSETOFFLOAD with TUN_F_CSUM|TSO4|TSO6|USO4|USO6, then without
// USO for kernels before 6.2 (EINVAL); `offloads` is what the kernel accepted (0 without offload).
// A kernel refusing even CSUM|TSO fails the call (the caller may open again without offload).
Napi::Value TunOpen(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string name = info.Length() > 0 && info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
  bool mq = info.Length() > 1 && info[1].ToBoolean().Value();
  bool offload = info.Length() > 2 && info[2].ToBoolean().Value();
  if (name.size() >= IFNAMSIZ) return ThrowType(env, "interface name too long (max 15 bytes)");
  int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return ThrowErrno(env, "open /dev/net/tun", errno);
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI | (mq ? IFF_MULTI_QUEUE : 0) | (offload ? IFF_VNET_HDR : 0);
  memcpy(ifr.ifr_name, name.data(), name.size());
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    int e = errno;
    close(fd);
    return ThrowErrno(env, "ioctl TUNSETIFF", e);
  }
  unsigned offloads = 0;
  if (offload) {
    const unsigned base = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6;
    offloads = base | TUN_F_USO4 | TUN_F_USO6;
    if (ioctl(fd, TUNSETOFFLOAD, offloads) < 0) {
      offloads = base;
      if (ioctl(fd, TUNSETOFFLOAD, offloads) < 0) {
        int e = errno;
        close(fd);
        return ThrowErrno(env, "ioctl TUNSETOFFLOAD", e);
      }
    }
  }
  Napi::Object r = Napi::Object::New(env);
  r.Set("fd", Napi::Number::New(env, fd));
  r.Set("name", Napi::String::New(env, ifr.ifr_name));
  r.Set("offloads", Napi::Number::New(env, offloads));
  return r;
}

int CtlSocket() { return socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0); }

// setMtu(ifname, mtu)
Napi::Value SetMtu(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int32_t mtu;
  if (info.Length() < 2 || !info[0].IsString() || !ArgInt(info, 1, &mtu)) return ThrowType(env, "setMtu(ifname, mtu)");
  std::string name = info[0].As<Napi::String>().Utf8Value();
  if (name.size() >= IFNAMSIZ) return ThrowType(env, "interface name too long");
  int s = CtlSocket();
  if (s < 0) return ThrowErrno(env, "socket", errno);
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, name.data(), name.size());
  ifr.ifr_mtu = mtu;
  int rc = ioctl(s, SIOCSIFMTU, &ifr);
  int e = errno;
  close(s);
  if (rc < 0) return ThrowErrno(env, "ioctl SIOCSIFMTU " + name, e);
  return env.Undefined();
}

// setUp(ifname, up: boolean)
Napi::Value SetUp(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) return ThrowType(env, "setUp(ifname, up)");
  std::string name = info[0].As<Napi::String>().Utf8Value();
  bool up = info.Length() < 2 || info[1].ToBoolean().Value();
  if (name.size() >= IFNAMSIZ) return ThrowType(env, "interface name too long");
  int s = CtlSocket();
  if (s < 0) return ThrowErrno(env, "socket", errno);
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, name.data(), name.size());
  if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) {
    int e = errno;
    close(s);
    return ThrowErrno(env, "ioctl SIOCGIFFLAGS " + name, e);
  }
  if (up) ifr.ifr_flags |= IFF_UP;
  else ifr.ifr_flags &= ~IFF_UP;
  int rc = ioctl(s, SIOCSIFFLAGS, &ifr);
  int e = errno;
  close(s);
  if (rc < 0) return ThrowErrno(env, "ioctl SIOCSIFFLAGS " + name, e);
  return env.Undefined();
}

// The data pointer and length of element i of a JS array of Uint8Arrays (marshalled one by one,
// as they are used: a lone packet costs one element, not the whole pool).
bool SlotAt(Napi::Env env, Napi::Array arr, uint32_t i, iovec *out) {
  Napi::Value v = arr.Get(i);
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    ThrowType(env, "buffers must be an array of Buffer/Uint8Array");
    return false;
  }
  Napi::Uint8Array u = v.As<Napi::Uint8Array>();
  out->iov_base = u.Data();
  out->iov_len = u.ByteLength();
  return true;
}

// readBatch(fd, buffers: Uint8Array[], lengths: Int32Array, maxReads?) -> count
// Reads one packet per buffer until EAGAIN or min(buffers.length, lengths.length) packets; with
// maxReads (> 0) at most that many read()s (a caller expecting a lone packet spares the read that
// would only say EAGAIN; the descriptor stays readable if more is queued).
Napi::Value ReadBatch(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int32_t fd;
  if (!ArgInt(info, 0, &fd) || info.Length() < 3 || !info[1].IsArray()) return ThrowType(env, "readBatch(fd, buffers, lengths, maxReads?)");
  int32_t *lens;
  size_t nlens;
  if (!GetLengths(env, info[2], &lens, &nlens)) return env.Undefined();
  int32_t reads = 0;
  ArgInt(info, 3, &reads);
  Napi::Array arr = info[1].As<Napi::Array>();
  size_t max = arr.Length() < nlens ? arr.Length() : nlens;
  if (reads > 0 && (size_t)reads < max) max = (size_t)reads;
  size_t n = 0;
  iovec slot;
  while (n < max) {
    if (!SlotAt(env, arr, (uint32_t)n, &slot)) return env.Undefined();
    ssize_t r = read(fd, slot.iov_base, slot.iov_len);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      if (n > 0) break;  // report what we have; the error shows again on the next call
      return ThrowErrno(env, "read", errno);
    }
    lens[n++] = (int32_t)r;
  }
  return Napi::Number::New(env, (double)n);
}

// writeBatch(fd, buffers, lengths, count) -> packets written (stops early on EAGAIN)
Napi::Value WriteBatch(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int32_t fd, count;
  if (!ArgInt(info, 0, &fd) || info.Length() < 4 || !info[1].IsArray() || !ArgInt(info, 3, &count) || count < 0)
    return ThrowType(env, "writeBatch(fd, buffers, lengths, count)");
  int32_t *lens;
  size_t nlens;
  if (!GetLengths(env, info[2], &lens, &nlens)) return env.Undefined();
  if ((size_t)count > nlens) return ThrowType(env, "count exceeds buffers/lengths");
  std::vector<iovec> iov;
  if (!CollectBuffers(env, info[1].As<Napi::Array>(), (uint32_t)count, &iov)) return env.Undefined();
  if ((size_t)count > iov.size()) return ThrowType(env, "count exceeds buffers/lengths");
  int32_t n = 0;
  while (n < count) {
    int32_t l = lens[n];
    if (l < 0 || (size_t)l > iov[n].iov_len) return ThrowType(env, "length out of range for its buffer");
    ssize_t r = write(fd, iov[n].iov_base, (size_t)l);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      if (n > 0) break;
      return ThrowErrno(env, "write", errno);
    }
    n++;
  }
  return Napi::Number::New(env, n);
}

// closeFd(fd)
Napi::Value CloseFd(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int32_t fd;
  if (!ArgInt(info, 0, &fd)) return ThrowType(env, "closeFd(fd)");
  if (close(fd) < 0 && errno != EINTR) return ThrowErrno(env, "close", errno);
  return env.Undefined();
}

// dupFd(fd) -> a new close-on-exec descriptor for the same open file (its own slot in an event
// loop: libuv allows one watcher per descriptor number), non-blocking like the original.
Napi::Value DupFd(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int32_t fd;
  if (!ArgInt(info, 0, &fd)) return ThrowType(env, "dupFd(fd)");
  int nfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (nfd < 0) return ThrowErrno(env, "fcntl F_DUPFD_CLOEXEC", errno);
  return Napi::Number::New(env, nfd);
}

// ---------------------------------------------------------------------------------------------
// Sockets

// rawSocket(family: 4|6, protocol) -> fd (non-blocking, close-on-exec)
Napi::Value RawSocket(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int32_t fam, proto;
  if (!ArgInt(info, 0, &fam) || !ArgInt(info, 1, &proto) || (fam != 4 && fam != 6)) return ThrowType(env, "rawSocket(4|6, protocol)");
  int fd = socket(fam == 4 ? AF_INET : AF_INET6, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, proto);
  if (fd < 0) return ThrowErrno(env, fam == 4 ? "socket AF_INET SOCK_RAW" : "socket AF_INET6 SOCK_RAW", errno);
  return Napi::Number::New(env, fd);
}

// udpSocket(family: 4|6) -> fd (non-blocking)
Napi::Value UdpSocket(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int32_t fam;
  if (!ArgInt(info, 0, &fam) || (fam != 4 && fam != 6)) return ThrowType(env, "udpSocket(4|6)");
  int fd = socket(fam == 4 ? AF_INET : AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return ThrowErrno(env, "socket SOCK_DGRAM", errno);
  return Napi::Number::New(env, fd);
}

bool ParseAddr(Napi::Env env, const Napi::Value &v, int port, sockaddr_storage *ss, socklen_t *sl) {
  if (!v.IsString()) {
    ThrowType(env, "address must be a string");
    return false;
  }
  std::string s = v.As<Napi::String>().Utf8Value();
  memset(ss, 0, sizeof *ss);
  auto *s4 = reinterpret_cast<sockaddr_in *>(ss);
  auto *s6 = reinterpret_cast<sockaddr_in6 *>(ss);
  if (inet_pton(AF_INET, s.c_str(), &s4->sin_addr) == 1) {
    s4->sin_family = AF_INET;
    s4->sin_port = htons((uint16_t)port);
    *sl = sizeof *s4;
    return true;
  }
  std::string host = s, scope;
  size_t pct = s.find('%');
  if (pct != std::string::npos) {
    host = s.substr(0, pct);
    scope = s.substr(pct + 1);
  }
  if (inet_pton(AF_INET6, host.c_str(), &s6->sin6_addr) == 1) {
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons((uint16_t)port);
    if (!scope.empty()) {
      unsigned idx = if_nametoindex(scope.c_str());
      if (idx == 0) idx = (unsigned)strtoul(scope.c_str(), nullptr, 10);
      s6->sin6_scope_id = idx;
    }
    *sl = sizeof *s6;
    return true;
  }
  Napi::TypeError::New(env, "invalid IP address: " + s).ThrowAsJavaScriptException();
  return false;
}

// bindAddr(fd, address, port)
Napi::Value BindAddr(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int32_t fd, port = 0;
  if (!ArgInt(info, 0, &fd) || info.Length() < 2) return ThrowType(env, "bind(fd, address, port?)");
  ArgInt(info, 2, &port);
  sockaddr_storage ss;
  socklen_t sl;
  if (!ParseAddr(env, info[1], port, &ss, &sl)) return env.Undefined();
  if (bind(fd, reinterpret_cast<sockaddr *>(&ss), sl) < 0) return ThrowErrno(env, "bind", errno);
  return env.Undefined();
}

// setsockoptInt(fd, level, opt, value)
Napi::Value SetsockoptInt(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int32_t fd, level, opt, val;
  if (!ArgInt(info, 0, &fd) || !ArgInt(info, 1, &level) || !ArgInt(info, 2, &opt) || !ArgInt(info, 3, &val))
    return ThrowType(env, "setsockoptInt(fd, level, opt, value)");
  int v = val;
  if (setsockopt(fd, level, opt, &v, sizeof v) < 0) return ThrowErrno(env, "setsockopt(" + std::to_string(level) + ", " + std::to_string(opt) + ")", errno);
  return env.Undefined();
}

// getsockoptInt(fd, level, opt) -> value
Napi::Value GetsockoptInt(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int32_t fd, level, opt;
  if (!ArgInt(info, 0, &fd) || !ArgInt(info, 1, &level) || !ArgInt(info, 2, &opt)) return ThrowType(env, "getsockoptInt(fd, level, opt)");
  int v = 0;
  socklen_t l = sizeof v;
  if (getsockopt(fd, level, opt, &v, &l) < 0) return ThrowErrno(env, "getsockopt(" + std::to_string(level) + ", " + std::to_string(opt) + ")", errno);
  return Napi::Number::New(env, v);
}

// peerCred(fd) -> {pid, uid, gid}: SO_PEERCRED of a connected AF_UNIX socket (the credentials
// the peer had at connect() time, from the kernel; cannot be forged by the peer).
Napi::Value PeerCred(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int32_t fd;
  if (!ArgInt(info, 0, &fd)) return ThrowType(env, "peerCred(fd)");
  struct ucred cred;
  memset(&cred, 0, sizeof cred);
  socklen_t l = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &l) < 0) return ThrowErrno(env, "getsockopt(SO_PEERCRED)", errno);
  if (l != sizeof cred) return ThrowErrno(env, "getsockopt(SO_PEERCRED)", EINVAL);
  Napi::Object r = Napi::Object::New(env);
  r.Set("pid", Napi::Number::New(env, cred.pid));
  r.Set("uid", Napi::Number::New(env, cred.uid));
  r.Set("gid", Napi::Number::New(env, cred.gid));
  return r;
}

// bindToDevice(fd, ifname) ; "" unbinds
Napi::Value BindToDevice(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int32_t fd;
  if (!ArgInt(info, 0, &fd) || info.Length() < 2 || !info[1].IsString()) return ThrowType(env, "bindToDevice(fd, ifname)");
  std::string name = info[1].As<Napi::String>().Utf8Value();
  if (name.size() >= IFNAMSIZ) return ThrowType(env, "interface name too long");
  if (setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, name.c_str(), (socklen_t)name.size()) < 0)
    return ThrowErrno(env, "setsockopt SO_BINDTODEVICE " + name, errno);
  return env.Undefined();
}

// sendTo(fd, buffer, length, address, port?) -> bytes sent, or -1 on EAGAIN
Napi::Value SendTo(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int32_t fd, len, port = 0;
  if (!ArgInt(info, 0, &fd) || info.Length() < 4 || !info[1].IsTypedArray() || !ArgInt(info, 2, &len))
    return ThrowType(env, "sendTo(fd, buffer, length, address, port?)");
  ArgInt(info, 4, &port);
  Napi::TypedArray ta = info[1].As<Napi::TypedArray>();
  if (ta.TypedArrayType() != napi_uint8_array) return ThrowType(env, "buffer must be a Buffer/Uint8Array");
  Napi::Uint8Array u = ta.As<Napi::Uint8Array>();
  if (len < 0 || (size_t)len > u.ByteLength()) return ThrowType(env, "length out of range");
  sockaddr_storage ss;
  socklen_t sl;
  if (!ParseAddr(env, info[3], port, &ss, &sl)) return env.Undefined();
  for (;;) {
    ssize_t r = sendto(fd, u.Data(), (size_t)len, 0, reinterpret_cast<sockaddr *>(&ss), sl);
    if (r >= 0) return Napi::Number::New(env, (double)r);
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) return Napi::Number::New(env, -1);
    return ThrowErrno(env, "sendto", errno);
  }
}

// sendBatch(fd, buffers, lengths, count, address, port?) -> packets sent (sendmmsg, one destination)
Napi::Value SendBatch(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int32_t fd, count, port = 0;
  if (!ArgInt(info, 0, &fd) || info.Length() < 5 || !info[1].IsArray() || !ArgInt(info, 3, &count) || count < 0)
    return ThrowType(env, "sendBatch(fd, buffers, lengths, count, address, port?)");
  ArgInt(info, 5, &port);
  int32_t *lens;
  size_t nlens;
  if (!GetLengths(env, info[2], &lens, &nlens)) return env.Undefined();
  if ((size_t)count > nlens) return ThrowType(env, "count exceeds buffers/lengths");
  std::vector<iovec> iov;
  if (!CollectBuffers(env, info[1].As<Napi::Array>(), (uint32_t)count, &iov)) return env.Undefined();
  if ((size_t)count > iov.size()) return ThrowType(env, "count exceeds buffers/lengths");
  sockaddr_storage ss;
  socklen_t sl;
  if (!ParseAddr(env, info[4], port, &ss, &sl)) return env.Undefined();
  std::vector<mmsghdr> msgs((size_t)count);
  for (int32_t i = 0; i < count; i++) {
    if (lens[i] < 0 || (size_t)lens[i] > iov[i].iov_len) return ThrowType(env, "length out of range for its buffer");
    iov[i].iov_len = (size_t)lens[i];
    memset(&msgs[i], 0, sizeof msgs[i]);
    msgs[i].msg_hdr.msg_name = &ss;
    msgs[i].msg_hdr.msg_namelen = sl;
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  int32_t done = 0;
  while (done < count) {
    int r = sendmmsg(fd, msgs.data() + done, (unsigned)(count - done), 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) break;
      if (done > 0) break;
      return ThrowErrno(env, "sendmmsg", errno);
    }
    done += r;
  }
  return Napi::Number::New(env, done);
}

// recvBatch(fd, buffers, lengths, addrs: Uint8Array) -> count  (recvmmsg, MSG_DONTWAIT)
// addrs holds 20 bytes per packet: [0]=family (4|6), [2..3]=port (BE), [4..19]=address (v4 in 4..7).
Napi::Value RecvBatch(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int32_t fd;
  if (!ArgInt(info, 0, &fd) || info.Length() < 4 || !info[1].IsArray() || !info[3].IsTypedArray())
    return ThrowType(env, "recvBatch(fd, buffers, lengths, addrs)");
  int32_t *lens;
  size_t nlens;
  if (!GetLengths(env, info[2], &lens, &nlens)) return env.Undefined();
  Napi::TypedArray ata = info[3].As<Napi::TypedArray>();
  if (ata.TypedArrayType() != napi_uint8_array) return ThrowType(env, "addrs must be a Uint8Array");
  Napi::Uint8Array addrs = ata.As<Napi::Uint8Array>();
  size_t max = nlens;
  if (addrs.ByteLength() / 20 < max) max = addrs.ByteLength() / 20;
  // A first recvmmsg of a few slots (a lone packet marshals 8 buffers, not the pool); only when
  // it fills them are the others marshalled and read.
  Napi::Array arr = info[1].As<Napi::Array>();
  if (arr.Length() < max) max = arr.Length();
  if (max == 0) return Napi::Number::New(env, 0);
  // reused between calls (no per-call allocation and zeroing of 64 × 200 octets)
  thread_local std::vector<iovec> iov;
  thread_local std::vector<mmsghdr> msgs;
  thread_local std::vector<sockaddr_storage> names;
  if (iov.size() < max) {
    iov.resize(max);
    msgs.resize(max);
    names.resize(max);
  }
  size_t ready = 0;  // slots marshalled
  size_t got = 0;
  while (got < max) {
    const size_t want = got == 0 ? (max < 8 ? max : 8) : max;
    for (; ready < want; ready++) {
      if (!SlotAt(env, arr, (uint32_t)ready, &iov[ready])) return env.Undefined();
      memset(&msgs[ready], 0, sizeof msgs[ready]);
      msgs[ready].msg_hdr.msg_name = &names[ready];
      msgs[ready].msg_hdr.msg_namelen = sizeof names[ready];
      msgs[ready].msg_hdr.msg_iov = &iov[ready];
      msgs[ready].msg_hdr.msg_iovlen = 1;
    }
    int r;
    do {
      r = recvmmsg(fd, msgs.data() + got, (unsigned)(want - got), MSG_DONTWAIT, nullptr);
    } while (r < 0 && errno == EINTR);
    if (r < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || got > 0) break;
      return ThrowErrno(env, "recvmmsg", errno);
    }
    got += (size_t)r;
    if (got < want) break;
  }
  const int r = (int)got;
  uint8_t *a = addrs.Data();
  for (int i = 0; i < r; i++) {
    lens[i] = (int32_t)msgs[i].msg_len;
    tunsec::PutAddr(a + (size_t)i * tunsec::kAddrSlot, names[i]);
  }
  return Napi::Number::New(env, r);
}

// ---------------------------------------------------------------------------------------------
// Poller: uv_poll readiness -> JS callback (err: Error|null, events: number)

struct PollHandle {
  uv_poll_t h;
  class Poller *owner;
};

class Poller : public Napi::ObjectWrap<Poller> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Poller",
                       {InstanceMethod<&Poller::Start>("start"), InstanceMethod<&Poller::Stop>("stop"),
                        InstanceMethod<&Poller::Close>("close")});
  }

  // new Poller(fd, callback)
  Poller(const Napi::CallbackInfo &info) : Napi::ObjectWrap<Poller>(info) {
    Napi::Env env = info.Env();
    int32_t fd;
    if (!ArgInt(info, 0, &fd) || info.Length() < 2 || !info[1].IsFunction()) {
      ThrowType(env, "new Poller(fd, callback)");
      return;
    }
    uv_loop_t *loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
      Napi::Error::New(env, "uv loop unavailable").ThrowAsJavaScriptException();
      return;
    }
    handle_ = new PollHandle();
    handle_->owner = this;
    handle_->h.data = handle_;
    int rc = uv_poll_init(loop, &handle_->h, fd);
    if (rc != 0) {
      delete handle_;
      handle_ = nullptr;
      Napi::Error e = Napi::Error::New(env, std::string("uv_poll_init: ") + uv_strerror(rc));
      e.Set("code", Napi::String::New(env, uv_err_name(rc)));
      e.ThrowAsJavaScriptException();
      return;
    }
    cb_ = Napi::Persistent(info[1].As<Napi::Function>());
    ctx_ = new Napi::AsyncContext(env, "tunsec.poll", info.This().As<Napi::Object>());
  }

  ~Poller() override { Release(); }

 private:
  static void OnPoll(uv_poll_t *h, int status, int events) {
    PollHandle *ph = static_cast<PollHandle *>(h->data);
    Poller *self = ph ? ph->owner : nullptr;
    if (!self || !self->active_) return;
    Napi::Env env = self->Env();
    Napi::HandleScope scope(env);
    napi_value args[2];
    if (status < 0) {
      Napi::Error e = Napi::Error::New(env, std::string("poll: ") + uv_strerror(status));
      e.Set("code", Napi::String::New(env, uv_err_name(status)));
      args[0] = e.Value();
    } else {
      args[0] = env.Null();
    }
    args[1] = Napi::Number::New(env, events);
    napi_value result;
    // The callback may call close(): Release() then defers freeing ctx_ (still in use here).
    self->in_callback_ = true;
    napi_status st = napi_make_callback(env, *self->ctx_, self->Value(), self->cb_.Value(), 2, args, &result);
    self->in_callback_ = false;
    if (self->ctx_deferred_) {
      self->ctx_deferred_ = false;
      delete self->ctx_;
      self->ctx_ = nullptr;
    }
    if (st != napi_ok) {
      bool pending = false;
      napi_is_exception_pending(env, &pending);
      if (pending) {
        napi_value err;
        if (napi_get_and_clear_last_exception(env, &err) == napi_ok) napi_fatal_exception(env, err);
      }
    }
  }

  static void OnClose(uv_handle_t *h) { delete static_cast<PollHandle *>(h->data); }

  // start(events?: number = UV_READABLE)
  Napi::Value Start(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (!handle_) return ThrowType(env, "poller is closed");
    int32_t ev = UV_READABLE;
    ArgInt(info, 0, &ev);
    int rc = uv_poll_start(&handle_->h, ev, OnPoll);
    if (rc != 0) {
      Napi::Error e = Napi::Error::New(env, std::string("uv_poll_start: ") + uv_strerror(rc));
      e.Set("code", Napi::String::New(env, uv_err_name(rc)));
      e.ThrowAsJavaScriptException();
      return env.Undefined();
    }
    if (!active_) {
      active_ = true;
      Ref();  // keep the JS object (and callback) alive while polling
    }
    return env.Undefined();
  }

  Napi::Value Stop(const Napi::CallbackInfo &info) {
    StopPolling();
    return info.Env().Undefined();
  }

  Napi::Value Close(const Napi::CallbackInfo &info) {
    Release();
    return info.Env().Undefined();
  }

  void StopPolling() {
    if (handle_) uv_poll_stop(&handle_->h);
    if (active_) {
      active_ = false;
      Unref();
    }
  }

  void Release() {
    StopPolling();
    if (handle_) {
      handle_->owner = nullptr;
      uv_close(reinterpret_cast<uv_handle_t *>(&handle_->h), OnClose);
      handle_ = nullptr;
    }
    if (ctx_ && in_callback_) {
      ctx_deferred_ = true;
    } else if (ctx_) {
      delete ctx_;
      ctx_ = nullptr;
    }
    if (!cb_.IsEmpty()) cb_.Reset();
  }

  PollHandle *handle_ = nullptr;
  Napi::FunctionReference cb_;
  Napi::AsyncContext *ctx_ = nullptr;
  bool active_ = false;
  bool in_callback_ = false;
  bool ctx_deferred_ = false;
};

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("tunOpen", Napi::Function::New<TunOpen>(env, "tunOpen"));
  exports.Set("setMtu", Napi::Function::New<SetMtu>(env, "setMtu"));
  exports.Set("setUp", Napi::Function::New<SetUp>(env, "setUp"));
  exports.Set("readBatch", Napi::Function::New<ReadBatch>(env, "readBatch"));
  exports.Set("writeBatch", Napi::Function::New<WriteBatch>(env, "writeBatch"));
  exports.Set("closeFd", Napi::Function::New<CloseFd>(env, "closeFd"));
  exports.Set("dupFd", Napi::Function::New<DupFd>(env, "dupFd"));
  exports.Set("rawSocket", Napi::Function::New<RawSocket>(env, "rawSocket"));
  exports.Set("udpSocket", Napi::Function::New<UdpSocket>(env, "udpSocket"));
  exports.Set("bind", Napi::Function::New<BindAddr>(env, "bind"));
  exports.Set("setsockoptInt", Napi::Function::New<SetsockoptInt>(env, "setsockoptInt"));
  exports.Set("getsockoptInt", Napi::Function::New<GetsockoptInt>(env, "getsockoptInt"));
  exports.Set("bindToDevice", Napi::Function::New<BindToDevice>(env, "bindToDevice"));
  exports.Set("peerCred", Napi::Function::New<PeerCred>(env, "peerCred"));
  exports.Set("sendTo", Napi::Function::New<SendTo>(env, "sendTo"));
  exports.Set("sendBatch", Napi::Function::New<SendBatch>(env, "sendBatch"));
  exports.Set("recvBatch", Napi::Function::New<RecvBatch>(env, "recvBatch"));
  exports.Set("Poller", Poller::Define(env));
  tunsec::InitAead(env, exports);
  tunsec::InitOffload(env, exports);
  tunsec::InitNotify(env, exports);
  tunsec::InitEsp(env, exports);
  tunsec::InitUdpGro(env, exports);

  Napi::Object c = Napi::Object::New(env);
  auto def = [&](const char *k, int v) { c.Set(k, Napi::Number::New(env, v)); };
  def("SOL_SOCKET", SOL_SOCKET);
  def("SO_MARK", SO_MARK);
  def("SO_RCVBUF", SO_RCVBUF);
  def("SO_SNDBUF", SO_SNDBUF);
  def("SO_RCVBUFFORCE", SO_RCVBUFFORCE);
  def("SO_SNDBUFFORCE", SO_SNDBUFFORCE);
  def("SO_BINDTODEVICE", SO_BINDTODEVICE);
  def("IPPROTO_IP", IPPROTO_IP);
  def("IPPROTO_IPV6", IPPROTO_IPV6);
  def("IPPROTO_UDP", IPPROTO_UDP);
  def("IPPROTO_ESP", IPPROTO_ESP);
  def("SOL_UDP", SOL_UDP);
  def("UDP_GRO", UDP_GRO);
  def("IP_TOS", IP_TOS);
  def("IP_MTU_DISCOVER", IP_MTU_DISCOVER);
  def("IPV6_V6ONLY", IPV6_V6ONLY);
  def("UV_READABLE", UV_READABLE);
  def("UV_WRITABLE", UV_WRITABLE);
  def("TUN_F_CSUM", TUN_F_CSUM);
  def("TUN_F_TSO4", TUN_F_TSO4);
  def("TUN_F_TSO6", TUN_F_TSO6);
  def("TUN_F_USO4", TUN_F_USO4);
  def("TUN_F_USO6", TUN_F_USO6);
  exports.Set("constants", c);
  return exports;
}

}  // namespace

NODE_API_MODULE(tunsec_native, Init)
