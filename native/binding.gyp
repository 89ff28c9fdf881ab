{
  "targets": [{
    "target_name": "tunsec_native",
    "sources": ["tunsec_native.cc", "tunsec_aead.cc", "tunsec_offload.cc", "tunsec_notify.cc", "tunsec_esp.cc", "tunsec_udp_gro.cc"],
    "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
    "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
    "cflags_cc": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-std=c++17"]
  }]
}
