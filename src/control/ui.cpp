#include "control/ui.h"

#include <map>
#include <string>

#include "common/digest.h"

namespace bf::control {
namespace {

std::string_view content_type(std::string_view path) {
  static const std::map<std::string_view, std::string_view> types{
      {".html", "text/html; charset=utf-8"},   {".js", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},     {".json", "application/json"},
      {".map", "application/json"},            {".svg", "image/svg+xml"},
      {".png", "image/png"},                   {".ico", "image/x-icon"},
      {".woff2", "font/woff2"},                {".txt", "text/plain; charset=utf-8"},
  };
  const size_t dot = path.rfind('.');
  if (dot != std::string_view::npos) {
    auto it = types.find(path.substr(dot));
    if (it != types.end()) return it->second;
  }
  return "application/octet-stream";
}

struct Entry {
  const UiFile* file;
  std::string etag;
};

const std::map<std::string_view, Entry>& index() {
  static const std::map<std::string_view, Entry> files = [] {
    std::map<std::string_view, Entry> m;
    for (const UiFile& f : ui_files()) m[f.path] = Entry{&f, "\"" + sha256_hex(f.body).substr(0, 32) + "\""};
    return m;
  }();
  return files;
}

bool is_reserved(std::string_view path) {
  return path == "/api" || path.starts_with("/api/") || path == "/healthz" || path == "/readyz" ||
         path == "/metrics";
}

HttpResponse answer(const HttpRequest& request, const Entry& e) {
  HttpResponse r;
  r.headers["Content-Type"] = std::string(content_type(e.file->path));
  r.headers["X-Content-Type-Options"] = "nosniff";
  // Vite names built assets by content hash: a new build has new names.
  r.headers["Cache-Control"] =
      e.file->path.starts_with("/assets/") ? "public, max-age=31536000, immutable" : "no-cache";
  r.headers["ETag"] = e.etag;
  if (e.file->path.ends_with(".html")) {
    // The app loads only its own files; fetch() may reach other origins (the query
    // server and receiver of the first-run page live on other ports).
    r.headers["Content-Security-Policy"] =
        "default-src 'self'; connect-src 'self' http: https:; img-src 'self' data:; frame-ancestors 'none'; "
        "base-uri 'none'; form-action 'self'";
    r.headers["X-Frame-Options"] = "DENY";
    r.headers["Referrer-Policy"] = "same-origin";
  }
  if (auto inm = request.header("If-None-Match"); inm && *inm == e.etag) {
    r.status = 304;
    return r;
  }
  r.body = std::string(e.file->body);
  return r;
}

}  // namespace

HttpResponse serve_ui(const HttpRequest& request) {
  const std::string& path = request.path;
  const bool read = request.method == "GET" || request.method == "HEAD";
  if (!read || is_reserved(path)) return HttpResponse::error(404, "no route for " + path);
  const auto& files = index();
  if (auto it = files.find(path == "/" ? std::string_view("/index.html") : std::string_view(path)); it != files.end())
    return answer(request, it->second);
  const std::string_view last = std::string_view(path).substr(path.rfind('/') + 1);
  auto index_html = files.find("/index.html");
  if (last.find('.') != std::string_view::npos || index_html == files.end())
    return HttpResponse::error(404, "no such file: " + path);
  return answer(request, index_html->second);  // an app page: the app routes it
}

}  // namespace bf::control
