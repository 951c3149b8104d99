#include <stdlib.h>
#include <tide.h>

/* One task per connection: each line comes back until the client leaves. */
static int64_t echo(struct tide_stream_reader *r, struct tide_stream_writer *w, void *arg)
{
	char line[1024];
	ssize_t n;

	while ((n = tide_stream_readline(r, line, sizeof(line))) > 0 && tide_stream_write(w, line, (size_t)n) == 0)
		tide_stream_drain(w);
	return 0;
}

int main(int argc, char **argv)
{
	const char *host = "127.0.0.1";
	struct tide_loop *loop;
	struct tide_future *server;

	if (tide_loop_new(NULL, &loop) < 0 ||
	    tide_start_server(loop, &host, 1, argc > 1 ? atoi(argv[1]) : 8888, NULL, echo, NULL, &server) < 0 ||
	    tide_loop_run_until_complete(loop, server) < 0 || tide_future_error(server) < 0)
		return 1;
	return tide_loop_run(loop) < 0; /* serves until killed */
}
