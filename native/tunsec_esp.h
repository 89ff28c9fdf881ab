// Shared between tunsec_aead.cc (which owns the per-SA AES-GCM keys) and tunsec_esp.cc (which
// seals and opens ESP packets in batches with them).
#pragma once

#include <openssl/evp.h>
#include <stdint.h>

namespace tunsec {

// Which of a key's two contexts a caller needs: an outbound SA only seals, an inbound one only opens.
enum class EspKeyDirection { kSeal, kOpen };

// A live AeadKey's context for one direction: valid until that key is destroyed (on the JS thread
// that owns it, so for the whole of one batch call).
struct EspKeyView {
  EVP_CIPHER_CTX *ctx = nullptr;
  const unsigned char *salt = nullptr;  // 4 octets
};

// The key with this `handle` (AeadKey.handle), its context for `dir` made if it is the first use;
// false when there is none (destroyed) or OpenSSL cannot make the context.
bool EspKeyLookup(uint32_t handle, EspKeyDirection dir, EspKeyView *out);

}  // namespace tunsec
