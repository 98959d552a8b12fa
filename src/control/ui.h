#pragma once
// The web UI (ui/, docs/ui.md): the static files Vite builds, compiled into the binary
// (CMake generates control_ui_assets.cpp from the build output) and served by control
// at / as a single-page app.
#include <string_view>
#include <vector>

#include "net/http.h"

namespace bf::control {

struct UiFile {
  std::string_view path;  // "/index.html", "/assets/index-<hash>.js"
  std::string_view body;
};
// Every built file (generated).
const std::vector<UiFile>& ui_files();

// The router's fallback on control (no API route shadowed): GET/HEAD of a built file
// answers it, with its content type; Vite's hashed /assets/ files are cacheable
// forever, everything else is revalidated (ETag). Any other page path answers
// index.html (the app routes in the browser). /api/..., paths that look like a file
// (a dot in the last segment) and other methods keep the JSON 404.
HttpResponse serve_ui(const HttpRequest& request);

}  // namespace bf::control
