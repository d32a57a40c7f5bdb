# Thin wrapper over CMake; the README's two commands are `make demo` and `make test`
# (or tools/bootstrap.sh demo|test where make is not installed yet).
.PHONY: demo test build clean
demo:
	tools/bootstrap.sh demo
test:
	tools/bootstrap.sh test
build:
	tools/bootstrap.sh build
clean:
	rm -rf build build-asan demo-out
