# Compiler warnings and sanitizer flags shared by every target of the project.

set(KTH_WARNING_FLAGS -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wstrict-prototypes
                      -Wmissing-prototypes -Wno-sign-conversion)

if(KTH_SANITIZE STREQUAL "address")
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=all
                      -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
elseif(KTH_SANITIZE STREQUAL "thread")
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer)
  add_link_options(-fsanitize=thread)
elseif(NOT KTH_SANITIZE STREQUAL "")
  message(FATAL_ERROR "KTH_SANITIZE must be empty, 'address' or 'thread'")
endif()

function(kth_apply_warnings target)
  target_compile_options(${target} PRIVATE ${KTH_WARNING_FLAGS})
  if(KTH_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
