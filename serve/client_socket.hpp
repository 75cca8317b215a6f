#pragma once
// ClientSocket: whether the client of a request being handled is still connected, for responses
// that are not streamed (cpp-httplib 0.11 reports a vanished client only through a streaming
// write; it gives a handler no socket). The handler runs on the thread that owns the connection
// and httplib closes that socket only after the handler returns, so the connection is found once
// by its TCP 4-tuple — the open socket whose local and peer addresses are the request's
// local_addr:local_port and remote_addr:remote_port (a connection is unique by them) — and its file
// descriptor stays valid while the handler waits. gone() asks the kernel without blocking: a peer
// that closed (FIN: recv(MSG_PEEK) reads 0 bytes; or RST / error: POLLHUP, POLLERR) is gone; bytes
// waiting (a pipelined request) are not read. Linux (poll's POLLRDHUP, /proc/self/fd).
#include <string>

namespace tori::serve {

class ClientSocket {
 public:
  // Finds the connection; found() false when no open socket matches (then gone() is always false).
  ClientSocket(const std::string& local_addr, int local_port, const std::string& remote_addr, int remote_port);
  bool found() const { return fd_ >= 0; }
  // True once the peer has closed or reset the connection. Never blocks.
  bool gone() const;

 private:
  int fd_ = -1;
};

}  // namespace tori::serve
