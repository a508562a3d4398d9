# Test tiers are ctest labels: unit (no privileges), integration (root, real
# kernel hooks, own namespaces and cgroups), fuzz (libFuzzer, bounded time).
function(sg_unit_test name)
  cmake_parse_arguments(T "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  sg_warnings(${name})
  target_link_libraries(${name} PRIVATE ${T_LIBS} GTest::gtest GTest::gmock GTest::gtest_main)
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES LABELS unit TIMEOUT 120)
endfunction()

# Integration tests run as root inside a private network namespace made by
# unshare(1): the kernel removes it when the test exits, on every path.
function(sg_integration_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;LIBS" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  add_executable(${name} ${T_SOURCES})
  sg_warnings(${name})
  target_link_libraries(${name} PRIVATE ${T_LIBS} GTest::gtest GTest::gmock GTest::gtest_main)
  add_test(NAME ${name}
    COMMAND ${CMAKE_SOURCE_DIR}/tests/integration/in_netns.sh $<TARGET_FILE:${name}>)
  set_tests_properties(${name} PROPERTIES LABELS integration TIMEOUT ${T_TIMEOUT}
    ENVIRONMENT "SOCKGATE_BIN=$<$<TARGET_EXISTS:sockgate>:$<TARGET_FILE:sockgate>>;SG_SOURCE_DIR=${CMAKE_SOURCE_DIR}")
endfunction()

function(sg_fuzz_target name)
  cmake_parse_arguments(T "" "SECONDS" "SOURCES;LIBS" ${ARGN})
  if(NOT SG_FUZZ)
    return()
  endif()
  if(NOT T_SECONDS)
    set(T_SECONDS 30)
  endif()
  if(NOT TARGET fuzz_targets)
    add_custom_target(fuzz_targets)
  endif()
  add_executable(${name} ${T_SOURCES})
  add_dependencies(fuzz_targets ${name})
  target_compile_options(${name} PRIVATE -fsanitize=fuzzer)
  target_link_options(${name} PRIVATE -fsanitize=fuzzer)
  target_link_libraries(${name} PRIVATE ${T_LIBS})
  set(corpus ${CMAKE_CURRENT_BINARY_DIR}/${name}_corpus)
  file(MAKE_DIRECTORY ${corpus})
  add_test(NAME ${name} COMMAND ${name} -max_total_time=${T_SECONDS} -rss_limit_mb=2048 ${corpus})
  set_tests_properties(${name} PROPERTIES LABELS fuzz TIMEOUT 300)
endfunction()

# VM tests run their command inside a VM booted from Debian's stock 6.1
# kernel (qemu TCG; see tests/vm/run-in-vm.sh and docs/vm-testing.md), for
# what the host kernel lacks: ESP/AH, kernel TLS, loadable modules.
#   sg_vm_test(NAME COMMAND exe-or-target [args...] [TIMEOUT s] [ENVIRONMENT VAR=value...])
# TIMEOUT bounds the VM run (default 120 s); ctest's own timeout is larger,
# leaving room for preparing the VM assets the first time on a machine. No
# qemu or no obtainable kernel: skipped (77), or a failure under CI=true.
function(sg_vm_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "COMMAND;ENVIRONMENT" ${ARGN})
  if(NOT T_COMMAND)
    message(FATAL_ERROR "sg_vm_test(${name}): COMMAND is required")
  endif()
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  list(GET T_COMMAND 0 exe)
  if(TARGET ${exe})
    list(REMOVE_AT T_COMMAND 0)
    list(PREPEND T_COMMAND $<TARGET_FILE:${exe}>)
  endif()
  add_test(NAME ${name} COMMAND ${CMAKE_SOURCE_DIR}/tests/vm/run-in-vm.sh -- ${T_COMMAND})
  math(EXPR ctest_timeout "${T_TIMEOUT} + 300")
  set_tests_properties(${name} PROPERTIES LABELS vm TIMEOUT ${ctest_timeout} SKIP_RETURN_CODE 77
    ENVIRONMENT "SG_VM_TIMEOUT=${T_TIMEOUT};SG_SOURCE_DIR=${CMAKE_SOURCE_DIR};${T_ENVIRONMENT}")
endfunction()
