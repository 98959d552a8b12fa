#pragma once
// Internal to src/net (includes Asio): opening a listening TCP acceptor, shared by
// the HTTP server and the TCP listener. Not for use outside net/*.cpp.
#include <boost/asio.hpp>
#include <stdexcept>
#include <string>

#include "net/listeners.h"

namespace bf::net_detail {

// Resolves `listen` ("host:port"), opens, binds (SO_REUSEADDR) and listens.
// Throws std::runtime_error starting with `who` (e.g. "http server 'receiver'").
inline void open_acceptor(boost::asio::ip::tcp::acceptor& acceptor, const std::string& listen,
                          const std::string& who) {
  using boost::asio::ip::tcp;
  const auto [host, port] = split_host_port(listen);
  boost::system::error_code ec;
  tcp::resolver resolver(acceptor.get_executor());
  auto results = resolver.resolve(host, std::to_string(port), tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || results.empty()) {
    throw std::runtime_error(who + ": cannot resolve listen address '" + listen +
                             "': " + (ec ? ec.message() : "no addresses"));
  }
  const tcp::endpoint ep = results.begin()->endpoint();
  auto fail = [&](const char* what) {
    boost::system::error_code ignored;
    acceptor.close(ignored);
    throw std::runtime_error(who + ": cannot " + what + " '" + listen + "': " + ec.message());
  };
  acceptor.open(ep.protocol(), ec);
  if (ec) fail("open socket for");
  acceptor.set_option(boost::asio::socket_base::reuse_address(true), ec);
  if (ec) fail("set SO_REUSEADDR on");
  acceptor.bind(ep, ec);
  if (ec) fail("bind");
  acceptor.listen(boost::asio::socket_base::max_listen_connections, ec);
  if (ec) fail("listen on");
}

}  // namespace bf::net_detail
