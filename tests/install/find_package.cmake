# The install/find_package test (registered in samples/embed/CMakeLists.txt): what a host
# project does with an installed Kotoba, end to end.
#   1. `cmake --install` the already-built tree into a fresh prefix (copying, no compiling);
#   2. configure samples/embed as a project of its own with CMAKE_PREFIX_PATH set to that
#      prefix, so find_package(Kotoba) must find the installed package, nothing in-tree;
#   3. build it and run it on its workflow, expecting the run's outputs;
#   4. run the installed kotobac and kotoba-vm.
# Run with: cmake -DKOTOBA_BINARY_DIR=... -DKOTOBA_SAMPLE_DIR=... -DKOTOBA_WORK_DIR=...
#           [-DKOTOBA_GENERATOR=Ninja] -P find_package.cmake
foreach(required KOTOBA_BINARY_DIR KOTOBA_SAMPLE_DIR KOTOBA_WORK_DIR)
  if(NOT ${required})
    message(FATAL_ERROR "find_package test: pass -D${required}=...")
  endif()
endforeach()
if(NOT KOTOBA_GENERATOR)
  set(KOTOBA_GENERATOR "Unix Makefiles")
endif()

set(prefix ${KOTOBA_WORK_DIR}/prefix)
set(build ${KOTOBA_WORK_DIR}/build)
file(REMOVE_RECURSE ${KOTOBA_WORK_DIR})
file(MAKE_DIRECTORY ${KOTOBA_WORK_DIR})

# run_step(NAME COMMAND...): runs the command, failing the test with its output if it fails.
function(run_step name)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE status OUTPUT_VARIABLE out
                  ERROR_VARIABLE err)
  if(NOT status EQUAL 0)
    message(FATAL_ERROR "find_package test: ${name} failed (${status}):\n${out}\n${err}")
  endif()
  set(step_output "${out}" PARENT_SCOPE)
  set(step_errors "${err}" PARENT_SCOPE)
endfunction()

run_step("cmake --install" ${CMAKE_COMMAND} --install ${KOTOBA_BINARY_DIR} --prefix ${prefix})
foreach(installed include/kotoba/kotoba.h include/kotoba/vm/opcodes.def bin/kotobac
                  bin/kotoba-vm)
  if(NOT EXISTS ${prefix}/${installed})
    message(FATAL_ERROR "find_package test: the install has no ${installed}")
  endif()
endforeach()

# Nothing of the build tree may leak in: the sample sees only the prefix.
run_step("configuring the sample" ${CMAKE_COMMAND} -S ${KOTOBA_SAMPLE_DIR} -B ${build}
         -G ${KOTOBA_GENERATOR} -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_BUILD_TYPE=Release)
run_step("building the sample" ${CMAKE_COMMAND} --build ${build})
run_step("running the sample" ${build}/kotoba-embed-sample ${KOTOBA_SAMPLE_DIR}/greeting.kotoba
         ${KOTOBA_WORK_DIR}/embed.db Ann)
string(STRIP "${step_output}" outputs)
if(NOT outputs STREQUAL [[{"message":"Dear Ann, our valued member","vip":true}]])
  message(FATAL_ERROR "find_package test: the sample printed '${outputs}'")
endif()

# The installed tools work from the prefix: compile the sample's workflow to a .kbc and have
# the sample run that.
run_step("installed kotobac" ${prefix}/bin/kotobac build ${KOTOBA_SAMPLE_DIR}/greeting.kotoba
         -o ${KOTOBA_WORK_DIR}/greeting.kbc)
run_step("running the sample on a .kbc" ${build}/kotoba-embed-sample
         ${KOTOBA_WORK_DIR}/greeting.kbc ${KOTOBA_WORK_DIR}/embed-kbc.db Bea)
string(STRIP "${step_output}" outputs)
if(NOT outputs STREQUAL [[{"message":"Dear Bea","vip":false}]])
  message(FATAL_ERROR "find_package test: the sample on a .kbc printed '${outputs}'")
endif()
run_step("installed kotoba-vm" ${prefix}/bin/kotoba-vm --help)
message(STATUS "find_package test: installed to ${prefix}, built and ran the sample")
# The prefix holds a few hundred MB of static libraries with debug information; a failed
# test leaves it for a look, a passing one does not.
file(REMOVE_RECURSE ${KOTOBA_WORK_DIR})
