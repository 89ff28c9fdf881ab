// sd_notify(3) for the daemon: one datagram to the service manager's $NOTIFY_SOCKET.
//
// Node has no unix datagram sockets, so the daemon sends its state changes (READY=1,
// RELOADING=1, STOPPING=1, WATCHDOG=1, STATUS=...) through here. The protocol is systemd's
// (sd_notify(3)): newline-separated VAR=value assignments in one AF_UNIX SOCK_DGRAM datagram;
// a socket path starting with '@' lives in the abstract namespace (the '@' becomes a NUL).
// No fd passing, no credentials beyond what the kernel attaches: the daemon needs neither.
#include <napi.h>

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <string>

namespace tunsec {

namespace {

Napi::Value ThrowNotifyError(Napi::Env env, const std::string &what, int err) {
  Napi::Error e = Napi::Error::New(env, what + ": " + strerror(err));
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("syscall", Napi::String::New(env, what));
  e.ThrowAsJavaScriptException();
  return env.Undefined();
}

// notifySend(socketPath, message): sends `message` as one datagram; throws on failure
// (path too long or not absolute/abstract: RangeError; socket/sendto errors: Error with errno).
Napi::Value NotifySend(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsString()) {
    Napi::TypeError::New(env, "notifySend(socketPath, message)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string path = info[0].As<Napi::String>().Utf8Value();
  std::string msg = info[1].As<Napi::String>().Utf8Value();

  sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  // sd_notify accepts absolute paths and '@' for the abstract namespace; nothing else.
  if (path.size() < 2 || (path[0] != '/' && path[0] != '@') || path.size() > sizeof sa.sun_path ||
      (path[0] == '/' && path.size() == sizeof sa.sun_path)) {
    Napi::RangeError::New(env, "NOTIFY_SOCKET must be an absolute path or start with '@', at most 107 bytes")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  memcpy(sa.sun_path, path.data(), path.size());
  socklen_t len;
  if (path[0] == '@') {
    sa.sun_path[0] = '\0';  // abstract: the name is exactly these bytes, no terminating NUL
    len = (socklen_t)(offsetof(sockaddr_un, sun_path) + path.size());
  } else {
    len = (socklen_t)(offsetof(sockaddr_un, sun_path) + path.size() + 1);
  }

  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ThrowNotifyError(env, "socket AF_UNIX SOCK_DGRAM", errno);
  ssize_t r;
  do {
    r = sendto(fd, msg.data(), msg.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr *>(&sa), len);
  } while (r < 0 && errno == EINTR);
  int err = errno;
  close(fd);
  if (r < 0) return ThrowNotifyError(env, "sendto " + path, err);
  if ((size_t)r != msg.size()) return ThrowNotifyError(env, "sendto " + path, EMSGSIZE);
  return env.Undefined();
}

}  // namespace

void InitNotify(Napi::Env env, Napi::Object exports) {
  exports.Set("notifySend", Napi::Function::New<NotifySend>(env, "notifySend"));
}

}  // namespace tunsec
