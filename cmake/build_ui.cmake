# cmake -DUI_DIR=<ui/> -DDIST=<dir> -DFALLBACK=<dir> -P build_ui.cmake
# Builds the web UI with the Vite from ui/node_modules (installed from the lockfile by
# scripts/setup.sh). Without it the binary embeds FALLBACK, a page that says how to
# build the UI, so a C++ build never needs Node.
if(EXISTS ${UI_DIR}/node_modules/vite/bin/vite.js)
  find_program(NODE node)
endif()
file(REMOVE_RECURSE ${DIST})
if(NODE)
  execute_process(COMMAND ${NODE} node_modules/vite/bin/vite.js build --logLevel warn --outDir ${DIST} --emptyOutDir
                  WORKING_DIRECTORY ${UI_DIR} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "ui: vite build failed (${rc})")
  endif()
  file(TOUCH ${DIST}/.stamp)
else()
  # No stamp: the next build looks again, so the UI is built once setup.sh ran.
  message(WARNING "ui: ui/node_modules is missing (run scripts/setup.sh): embedding a placeholder page")
  file(COPY ${FALLBACK}/ DESTINATION ${DIST})
endif()
