// tunsec native addon: AES-GCM-16 as ESP (RFC 4106) and IKEv2 (RFC 5282) use it, with OpenSSL's
// EVP API keyed once per SA and direction (each context made when first used).
//
// OpenSSL is not linked here: node (20.x) is statically linked with OpenSSL 3.0.x and exports its
// symbols, and node-gyp's include path for node's headers (<nodedir>/include/node) carries node's
// own openssl/*.h, which come first on the include path (before a system libssl-dev). The addon
// therefore resolves EVP_* against the OpenSSL inside the node binary that loads it.
//
// JS API (src/native/addon.ts has the typings):
//   new AeadKey(key /* Uint8Array 16|24|32 */, salt /* Uint8Array 4 */)
//   key.seal(buf, ivOff, aad, ptOff, ptLen): undefined
//       nonce = salt ‖ buf[ivOff, ivOff+8); buf[ptOff, ptOff+ptLen) is encrypted in place and the
//       16-octet ICV written at buf[ptOff+ptLen, ptOff+ptLen+16).
//   key.open(buf, ivOff, aad, ctOff, ctLen): boolean
//       ctLen excludes the ICV at buf[ctOff+ctLen, +16). Decrypts in place; true when the ICV
//       verifies. On false the ciphertext area is restored (re-encrypted with the same key stream),
//       so no unauthenticated plaintext is left behind and the caller may retry (e.g. another ESN
//       guess); it never throws for bad data.
//   key.handle: a number naming this key to the batched ESP calls of tunsec_esp.cc (never reused
//       within a process; unknown once the key is destroyed).
//   key.destroy(): frees the EVP contexts (OpenSSL cleanses the key schedule) and wipes key and salt;
//       later seal/open throw. Idempotent. The finalizer does the same if destroy() was not called.
// Argument errors throw: TypeError for a non-Uint8Array buffer/AAD or a non-number offset,
// RangeError for an offset/length that is not a non-negative integer or that points outside buf.
// `aad` may be any length (ESP: 8 or 12 octets; IKE SK: header ‖ payload header) and may alias buf.
#include <napi.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/opensslv.h>

#include <limits.h>
#include <stdint.h>
#include <string.h>

#include <cmath>
#include <mutex>
#include <unordered_map>

#include "tunsec_esp.h"

#if !defined(OPENSSL_VERSION_MAJOR) || OPENSSL_VERSION_MAJOR < 3
#error "tunsec_aead.cc expects node's OpenSSL 3 headers (<nodedir>/include/node/openssl)"
#endif

namespace tunsec {

namespace {

constexpr size_t kSaltLen = 4;
constexpr size_t kIvLen = 8;
constexpr size_t kNonceLen = kSaltLen + kIvLen;
constexpr size_t kIcvLen = 16;
// Number.MAX_SAFE_INTEGER: offsets above it cannot be exact JS integers anyway.
constexpr double kMaxSafeInteger = 9007199254740991.0;

struct Bytes {
  uint8_t *data = nullptr;
  size_t len = 0;
};

Napi::Value ThrowType(Napi::Env env, const char *msg) {
  Napi::TypeError::New(env, msg).ThrowAsJavaScriptException();
  return env.Undefined();
}

Napi::Value ThrowRange(Napi::Env env, const char *msg) {
  Napi::RangeError::New(env, msg).ThrowAsJavaScriptException();
  return env.Undefined();
}

// A Uint8Array (or Buffer). One napi call; no exception is left pending on failure.
bool GetBytes(Napi::Env env, napi_value v, Bytes *out) {
  napi_typedarray_type type;
  size_t length;
  void *data;
  napi_value arraybuffer;
  size_t byte_offset;
  if (napi_get_typedarray_info(env, v, &type, &length, &data, &arraybuffer, &byte_offset) != napi_ok) return false;
  if (type != napi_uint8_array) return false;
  out->data = static_cast<uint8_t *>(data);
  out->len = length;
  return true;
}

enum class IndexStatus { kOk, kType, kRange };

// A non-negative safe integer (a JS number; no silent Int32 wrap-around).
IndexStatus GetIndex(Napi::Env env, napi_value v, size_t *out) {
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok) return IndexStatus::kType;
  if (!(d >= 0) || d > kMaxSafeInteger || std::floor(d) != d) return IndexStatus::kRange;
  *out = static_cast<size_t>(d);
  return IndexStatus::kOk;
}

// The five arguments of seal/open, validated against buf. Returns false with a pending exception.
struct Args {
  Bytes buf;
  Bytes aad;
  size_t iv_off = 0;
  size_t data_off = 0;
  size_t data_len = 0;
};

bool ParseArgs(const Napi::CallbackInfo &info, const char *usage, Args *a) {
  Napi::Env env = info.Env();
  if (info.Length() < 5) {
    ThrowType(env, usage);
    return false;
  }
  if (!GetBytes(env, info[0], &a->buf)) {
    ThrowType(env, "AeadKey: buf must be a Uint8Array");
    return false;
  }
  if (!GetBytes(env, info[2], &a->aad)) {
    ThrowType(env, "AeadKey: aad must be a Uint8Array");
    return false;
  }
  size_t *slots[3] = {&a->iv_off, &a->data_off, &a->data_len};
  const napi_value vals[3] = {info[1], info[3], info[4]};
  for (int i = 0; i < 3; i++) {
    switch (GetIndex(env, vals[i], slots[i])) {
      case IndexStatus::kOk:
        break;
      case IndexStatus::kType:
        ThrowType(env, "AeadKey: offsets and lengths must be numbers");
        return false;
      case IndexStatus::kRange:
        ThrowRange(env, "AeadKey: offsets and lengths must be non-negative integers");
        return false;
    }
  }
  const size_t n = a->buf.len;
  if (a->iv_off > n || n - a->iv_off < kIvLen) {
    ThrowRange(env, "AeadKey: IV (8 octets at ivOff) outside buf");
    return false;
  }
  if (a->data_off > n || a->data_len > n - a->data_off || n - a->data_off - a->data_len < kIcvLen) {
    ThrowRange(env, "AeadKey: data (and the 16-octet ICV after it) outside buf");
    return false;
  }
  if (a->data_len > static_cast<size_t>(INT_MAX) || a->aad.len > static_cast<size_t>(INT_MAX)) {
    ThrowRange(env, "AeadKey: data or AAD longer than INT_MAX");
    return false;
  }
  return true;
}

class AeadKey;

// Handles of live keys, for the batched ESP calls (tunsec_esp.cc). Worker threads may load the
// addon too, so the map is locked; a key itself is only used on the thread that made it.
std::mutex registry_mutex;
std::unordered_map<uint32_t, AeadKey *> registry;
uint32_t next_handle = 1;

class AeadKey : public Napi::ObjectWrap<AeadKey> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "AeadKey",
                       {InstanceMethod<&AeadKey::Seal>("seal"), InstanceMethod<&AeadKey::Open>("open"),
                        InstanceMethod<&AeadKey::Destroy>("destroy"), InstanceAccessor<&AeadKey::Handle>("handle")});
  }

  // new AeadKey(key, salt)
  AeadKey(const Napi::CallbackInfo &info) : Napi::ObjectWrap<AeadKey>(info) {
    Napi::Env env = info.Env();
    Bytes key, salt;
    if (info.Length() < 2 || !GetBytes(env, info[0], &key) || !GetBytes(env, info[1], &salt)) {
      ThrowType(env, "new AeadKey(key: Uint8Array, salt: Uint8Array)");
      return;
    }
    const char *name = key.len == 16 ? "AES-128-GCM" : key.len == 24 ? "AES-192-GCM" : key.len == 32 ? "AES-256-GCM" : nullptr;
    if (name == nullptr) {
      ThrowRange(env, "AeadKey: key must be 16, 24 or 32 octets");
      return;
    }
    if (salt.len != kSaltLen) {
      ThrowRange(env, "AeadKey: salt must be 4 octets");
      return;
    }
    // Copy key and salt: they could alias memory that JS changes later. The EVP contexts are made
    // on first use (Encryptor/Decryptor): an ESP SA works in one direction only, so it never pays
    // for the other one's key schedule and GHASH tables (~1.8 KiB of OpenSSL state each).
    memcpy(key_, key.data, key.len);
    memcpy(salt_, salt.data, kSaltLen);
    cipher_ = EVP_CIPHER_fetch(nullptr, name, nullptr);
    if (cipher_ == nullptr || EVP_CIPHER_get_iv_length(cipher_) != static_cast<int>(kNonceLen)) {
      Release();
      Napi::Error::New(env, std::string("AeadKey: OpenSSL could not set up ") + name).ThrowAsJavaScriptException();
      return;
    }
    std::lock_guard<std::mutex> lock(registry_mutex);
    handle_ = next_handle++;
    if (next_handle == 0) next_handle = 1;  // 2^32 keys later; 0 stays "none"
    registry[handle_] = this;
  }

  // The contexts for `dir`, made on first use; false when destroyed or OpenSSL fails.
  bool Lookup(EspKeyDirection dir, EspKeyView *out) {
    EVP_CIPHER_CTX *ctx = dir == EspKeyDirection::kSeal ? Encryptor() : Decryptor();
    if (ctx == nullptr) return false;
    out->ctx = ctx;
    out->salt = salt_;
    return true;
  }

  ~AeadKey() override { Release(); }

 private:
  Napi::Value Seal(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (cipher_ == nullptr) return ThrowDestroyed(env);
    Args a;
    if (!ParseArgs(info, "AeadKey.seal(buf, ivOff, aad, ptOff, ptLen)", &a)) return env.Undefined();
    EVP_CIPHER_CTX *enc_ = Encryptor();
    if (enc_ == nullptr) return ThrowSetup(env);
    unsigned char nonce[kNonceLen];
    memcpy(nonce, salt_, kSaltLen);
    memcpy(nonce + kSaltLen, a.buf.data + a.iv_off, kIvLen);
    uint8_t *p = a.buf.data + a.data_off;
    const int len = static_cast<int>(a.data_len);
    int outl = 0;
    bool ok = EVP_EncryptInit_ex(enc_, nullptr, nullptr, nullptr, nonce) == 1 &&
              (a.aad.len == 0 || EVP_EncryptUpdate(enc_, nullptr, &outl, a.aad.data, static_cast<int>(a.aad.len)) == 1) &&
              (len == 0 || EVP_EncryptUpdate(enc_, p, &outl, p, len) == 1) &&
              EVP_EncryptFinal_ex(enc_, p + len, &outl) == 1 &&  // GCM: writes nothing
              EVP_CIPHER_CTX_ctrl(enc_, EVP_CTRL_AEAD_GET_TAG, static_cast<int>(kIcvLen), p + len) == 1;
    if (!ok) {
      // Not reachable with valid arguments; never leave half-encrypted data looking sealed.
      OPENSSL_cleanse(p, a.data_len + kIcvLen);
      Napi::Error::New(env, "AeadKey.seal: OpenSSL AES-GCM encryption failed").ThrowAsJavaScriptException();
    }
    return env.Undefined();
  }

  Napi::Value Open(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (cipher_ == nullptr) return ThrowDestroyed(env);
    Args a;
    if (!ParseArgs(info, "AeadKey.open(buf, ivOff, aad, ctOff, ctLen)", &a)) return env.Undefined();
    EVP_CIPHER_CTX *dec_ = Decryptor();
    if (dec_ == nullptr) return ThrowSetup(env);
    unsigned char nonce[kNonceLen];
    memcpy(nonce, salt_, kSaltLen);
    memcpy(nonce + kSaltLen, a.buf.data + a.iv_off, kIvLen);
    uint8_t *p = a.buf.data + a.data_off;
    const int len = static_cast<int>(a.data_len);
    int outl = 0;
    bool decrypted = false;
    // SET_TAG copies the ICV into the context before the in-place update could touch anything.
    bool ok = EVP_DecryptInit_ex(dec_, nullptr, nullptr, nullptr, nonce) == 1 &&
              EVP_CIPHER_CTX_ctrl(dec_, EVP_CTRL_AEAD_SET_TAG, static_cast<int>(kIcvLen), p + len) == 1 &&
              (a.aad.len == 0 || EVP_DecryptUpdate(dec_, nullptr, &outl, a.aad.data, static_cast<int>(a.aad.len)) == 1) &&
              (len == 0 || ((decrypted = true), EVP_DecryptUpdate(dec_, p, &outl, p, len) == 1)) &&
              EVP_DecryptFinal_ex(dec_, p + len, &outl) == 1;  // compares the ICV in constant time
    if (!ok && decrypted) {
      // GCM's key stream depends on key and nonce only: running the same counter stream over the
      // plaintext again (decrypting it) restores the ciphertext, without an encryption context.
      bool restored = EVP_DecryptInit_ex(dec_, nullptr, nullptr, nullptr, nonce) == 1 &&
                      EVP_DecryptUpdate(dec_, p, &outl, p, len) == 1;
      if (!restored) OPENSSL_cleanse(p, a.data_len);
    }
    return Napi::Boolean::New(env, ok);
  }

  Napi::Value Handle(const Napi::CallbackInfo &info) { return Napi::Number::New(info.Env(), handle_); }

  Napi::Value Destroy(const Napi::CallbackInfo &info) {
    Release();
    return info.Env().Undefined();
  }

  Napi::Value ThrowDestroyed(Napi::Env env) {
    Napi::Error::New(env, "AeadKey used after destroy()").ThrowAsJavaScriptException();
    return env.Undefined();
  }

  Napi::Value ThrowSetup(Napi::Env env) {
    Napi::Error::New(env, "AeadKey: OpenSSL could not set up an AES-GCM context").ThrowAsJavaScriptException();
    return env.Undefined();
  }

  EVP_CIPHER_CTX *Encryptor() { return Context(&enc_, true); }
  EVP_CIPHER_CTX *Decryptor() { return Context(&dec_, false); }

  // *slot, keyed on first use for encryption or decryption.
  EVP_CIPHER_CTX *Context(EVP_CIPHER_CTX **slot, bool encrypt) {
    if (*slot != nullptr || cipher_ == nullptr) return *slot;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    const bool ok = ctx != nullptr && EVP_CipherInit_ex(ctx, cipher_, nullptr, key_, nullptr, encrypt ? 1 : 0) == 1 &&
                    EVP_CIPHER_CTX_get_iv_length(ctx) == static_cast<int>(kNonceLen);
    if (!ok) {
      EVP_CIPHER_CTX_free(ctx);
      return nullptr;
    }
    *slot = ctx;
    return ctx;
  }

  void Release() {
    if (handle_ != 0) {
      std::lock_guard<std::mutex> lock(registry_mutex);
      registry.erase(handle_);
      handle_ = 0;
    }
    // EVP_CIPHER_CTX_free cleanses the provider context, key schedule included.
    EVP_CIPHER_CTX_free(enc_);
    EVP_CIPHER_CTX_free(dec_);
    EVP_CIPHER_free(cipher_);
    enc_ = nullptr;
    dec_ = nullptr;
    cipher_ = nullptr;
    OPENSSL_cleanse(key_, sizeof key_);
    OPENSSL_cleanse(salt_, sizeof salt_);
  }

  EVP_CIPHER *cipher_ = nullptr;  // null once destroyed
  EVP_CIPHER_CTX *enc_ = nullptr;
  EVP_CIPHER_CTX *dec_ = nullptr;
  unsigned char key_[32] = {0};
  unsigned char salt_[kSaltLen] = {0, 0, 0, 0};
  uint32_t handle_ = 0;
};

}  // namespace

bool EspKeyLookup(uint32_t handle, EspKeyDirection dir, EspKeyView *out) {
  std::lock_guard<std::mutex> lock(registry_mutex);
  auto it = registry.find(handle);
  return it != registry.end() && it->second->Lookup(dir, out);
}

// Called from the module's Init (tunsec_native.cc).
void InitAead(Napi::Env env, Napi::Object exports) { exports.Set("AeadKey", AeadKey::Define(env)); }

}  // namespace tunsec
