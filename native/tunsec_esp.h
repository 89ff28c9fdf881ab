// Shared between tunsec_aead.cc (which owns the per-SA AES-GCM keys) and tunsec_esp.cc (which
// seals and opens ESP packets in batches with them).
#pragma once

#include <openssl/evp.h>
#include <stdint.h>

namespace tunsec {

// A live AeadKey's contexts: valid until that key is destroyed (on the JS thread that owns it,
// so for the whole of one batch call).
struct EspKeyView {
  EVP_CIPHER_CTX *enc = nullptr;
  EVP_CIPHER_CTX *dec = nullptr;
  const unsigned char *salt = nullptr;  // 4 octets
};

// The key with this `handle` (AeadKey.handle); false when there is none (destroyed).
bool EspKeyLookup(uint32_t handle, EspKeyView *out);

}  // namespace tunsec
