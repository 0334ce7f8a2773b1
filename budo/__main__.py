import sys

try:  # Ctrl-C while the interpreter is still importing: the same quiet 130 as later on
    from budo.cli import main
except KeyboardInterrupt:
    sys.stderr.write("budo: interrupted\n")
    sys.exit(130)

sys.exit(main())
