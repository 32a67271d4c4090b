// Noticing that an HTTP client went away while its request is still being computed. cpp-httplib
// (0.11) hands a handler the request but not its socket, and only notices a closed connection
// when it writes. The handler's thread serves one connection at a time, so the socket is the one
// whose local and peer ports are the request's: found once, then polled between decode steps.
#pragma once

#include <string>

namespace mgserver {

// The connected socket with these ports, or -1 if none is found.
int find_client_socket(const std::string& remote_addr, int remote_port, int local_port);
// False once the peer has closed or reset the connection (a pipelined request is not a close).
bool client_connected(int fd);

}  // namespace mgserver
