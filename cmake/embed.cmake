# Turn a file into a C array (the dashboard page is served from the binary):
#   cmake -DIN=file -DOUT=file.c -DNAME=symbol -P cmake/embed.cmake
file(READ "${IN}" hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
file(WRITE "${OUT}" "/* generated from ${IN} by cmake/embed.cmake */\n"
  "const unsigned char ${NAME}[] = {${bytes} 0};\n"
  "const unsigned long ${NAME}_len = sizeof(${NAME}) - 1;\n")
