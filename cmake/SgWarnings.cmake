# Warnings are errors for our own code; third-party headers come in as SYSTEM.
function(sg_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wshadow -Wnon-virtual-dtor
    -Wcast-align -Wdouble-promotion -Wformat=2 -Werror)
endfunction()
