// Small helpers the addon's files share: typed-array access through the C N-API (no copies, no
// exceptions) and the 20-octet socket address slot the JS side reads (family 4/6, 0, port in
// network order, address).
#pragma once

#include <netinet/in.h>
#include <node_api.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

// UDP_GRO (Linux 5.0) may be missing from older uapi headers.
#ifndef SOL_UDP
#define SOL_UDP 17
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif

namespace tunsec {

// The data and element count of a typed array of the kind `want`; false for anything else.
template <typename T>
inline bool Typed(napi_env env, napi_value v, napi_typedarray_type want, T **data, size_t *len) {
  napi_typedarray_type type;
  void *d;
  napi_value ab;
  size_t off;
  if (napi_get_typedarray_info(env, v, &type, len, &d, &ab, &off) != napi_ok || type != want) return false;
  *data = static_cast<T *>(d);
  return true;
}

inline bool U8(napi_env env, napi_value v, uint8_t **data, size_t *len) { return Typed(env, v, napi_uint8_array, data, len); }

// Element i of a JS array of Uint8Arrays (only the elements used are touched: a batch of 3 in a
// pool of 64 marshals 3).
inline bool Element(napi_env env, napi_value arr, uint32_t i, uint8_t **data, size_t *len) {
  napi_value v;
  return napi_get_element(env, arr, i, &v) == napi_ok && U8(env, v, data, len);
}

constexpr size_t kAddrSlot = 20;

// `ss` as an address slot: [0] family 4 or 6 (0: neither), [2..3] port, [4..] the address.
inline void PutAddr(uint8_t *slot, const sockaddr_storage &ss) {
  memset(slot, 0, kAddrSlot);
  if (ss.ss_family == AF_INET) {
    const auto *s4 = reinterpret_cast<const sockaddr_in *>(&ss);
    slot[0] = 4;
    memcpy(slot + 2, &s4->sin_port, 2);
    memcpy(slot + 4, &s4->sin_addr, 4);
  } else if (ss.ss_family == AF_INET6) {
    const auto *s6 = reinterpret_cast<const sockaddr_in6 *>(&ss);
    slot[0] = 6;
    memcpy(slot + 2, &s6->sin6_port, 2);
    memcpy(slot + 4, &s6->sin6_addr, 16);
  }
}

}  // namespace tunsec
