# What `cmake --install BUILD --prefix P` puts under P, and the CMake package that lets a host
# project write `find_package(Kotoba REQUIRED)` and `target_link_libraries(app Kotoba::kotoba)`
# (docs/embedding.md):
#   lib/      the static libraries, the embedding facade and everything it links
#   include/  one kotoba/ tree: kotoba.h and the vm, compiler, runtime and stdlib headers
#   bin/      kotobac and kotoba-vm
#   lib/cmake/Kotoba/  KotobaConfig.cmake and KotobaConfigVersion.cmake
# The package declares imported targets itself (KotobaConfig.cmake.in) instead of exporting
# the build's targets: those carry source-tree include paths and the build's own interface
# targets for LLVM and ANTLR, which have no meaning in an installed tree.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(KOTOBA_INSTALLED_LIBRARIES
  kotoba_embedding kotoba_stdlib kotoba_runtime kotoba_compiler kotoba_grammar kotoba_vm)
install(TARGETS ${KOTOBA_INSTALLED_LIBRARIES} ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(TARGETS kotobac kotoba-vm RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# The trailing slashes merge the four include/kotoba/ folders into one. The .def lists are
# part of the headers (they are included by them).
install(DIRECTORY
  ${PROJECT_SOURCE_DIR}/vm/include/
  ${PROJECT_SOURCE_DIR}/compiler/include/
  ${PROJECT_SOURCE_DIR}/runtime/include/
  ${PROJECT_SOURCE_DIR}/stdlib-activities/include/
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
  FILES_MATCHING PATTERN "*.h" PATTERN "*.def")

# Where this build found the dependencies that have no package of their own (the ANTLR
# runtime) or live outside the default search path (LLVM 14), as hints for the host's build.
get_filename_component(KOTOBA_ANTLR4_RUNTIME_DIR ${ANTLR4_RUNTIME_LIBRARY} DIRECTORY)
set(KOTOBA_LLVM_DIR ${LLVM_DIR})

set(KOTOBA_PACKAGE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/Kotoba)
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/KotobaConfig.cmake.in
  ${PROJECT_BINARY_DIR}/package/KotobaConfig.cmake
  INSTALL_DESTINATION ${KOTOBA_PACKAGE_DIR}
  PATH_VARS CMAKE_INSTALL_LIBDIR CMAKE_INSTALL_INCLUDEDIR)
# 0.x: a minor version may change the API, so only the same minor version is compatible.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/package/KotobaConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES
  ${PROJECT_BINARY_DIR}/package/KotobaConfig.cmake
  ${PROJECT_BINARY_DIR}/package/KotobaConfigVersion.cmake
  DESTINATION ${KOTOBA_PACKAGE_DIR})
