# SPDX-License-Identifier: MIT
# The man pages, as liburing ships them: tide(7), the overview, and one
# section 3 page per family of functions, named after its main function,
# whose NAME line and SYNOPSIS list every function of the family; each
# other function of the family is a one-line ".so" link to that page, so
# that `man FUNCTION` finds it. `make install` puts them in $(mandir)/man3
# and man7; they ship in the tarball.
# Paths are relative to the top folder (included from the top Makefile.am).

dist_man7_MANS = man/tide.7

# The family pages.
TIDE_MAN3_PAGES = \
	man/tide_barrier_new.3 man/tide_call_soon.3 man/tide_condition_new.3 man/tide_connect_read_pipe.3 \
	man/tide_create_connection.3 man/tide_create_connection_sock.3 man/tide_create_server.3 \
	man/tide_create_subprocess_exec.3 \
	man/tide_event_new.3 man/tide_subprocess_exec.3 \
	man/tide_executor_new.3 man/tide_future_new.3 man/tide_gather.3 \
	man/tide_getaddrinfo.3 man/tide_lock_new.3 man/tide_loop_add_signal_handler.3 man/tide_loop_new.3 \
	man/tide_loop_set_exception_handler.3 man/tide_op_read.3 \
	man/tide_open_connection.3 man/tide_queue_new.3 man/tide_run_coroutine_threadsafe.3 man/tide_semaphore_new.3 \
	man/tide_socket.3 man/tide_start_tls.3 man/tide_stream_read.3 man/tide_stream_write.3 \
	man/tide_strerror.3 man/tide_task_spawn.3 man/tide_taskgroup_new.3 \
	man/tide_timeout_enter.3 man/tide_transport_set_timeouts.3 man/tide_transport_write.3

# The .so links: every exported function that is not a page's own name.
TIDE_MAN3_LINKS = \
	man/tide_connect_accepted_socket.3 man/tide_create_server_sock.3 \
	man/tide_open_connection_sock.3 man/tide_start_server_sock.3 \
	man/tide_create_connection_ex.3 man/tide_create_unix_connection_ex.3 \
	man/tide_open_connection_ex.3 man/tide_open_unix_connection_ex.3 \
	man/tide_stream_start_tls.3 man/tide_tls_available.3 \
	man/tide_tls_client_context_new.3 man/tide_tls_server_context_new.3 \
	man/tide_get_running_loop.3 man/tide_loop_remove_signal_handler.3 man/tide_signal_wait.3 \
	man/tide_accept.3 man/tide_all_tasks.3 man/tide_as_completed_free.3 \
	man/tide_as_completed_new.3 man/tide_as_completed_next.3 man/tide_await.3 \
	man/tide_barrier_abort.3 man/tide_barrier_free.3 man/tide_barrier_reset.3 \
	man/tide_barrier_parties.3 man/tide_barrier_n_waiting.3 man/tide_barrier_broken.3 \
	man/tide_timeout_when.3 man/tide_future_cancel_msg.3 man/tide_future_cancel_message.3 \
	man/tide_taskgroup_abort.3 man/tide_taskgroup_errors.3 \
	man/tide_stream_read_all.3 man/tide_stream_reader_new.3 man/tide_stream_feed_data.3 \
	man/tide_stream_feed_eof.3 man/tide_stream_set_exception.3 \
	man/tide_barrier_wait.3 man/tide_call_at.3 man/tide_call_later.3 \
	man/tide_call_soon_threadsafe.3 man/tide_cfuture_cancel.3 man/tide_cfuture_done.3 \
	man/tide_cfuture_free.3 man/tide_cfuture_wait.3 man/tide_close.3 man/tide_condition_free.3 \
	man/tide_condition_lock.3 man/tide_condition_notify.3 \
	man/tide_condition_notify_all.3 man/tide_condition_wait.3 man/tide_connect.3 \
	man/tide_connect_write_pipe.3 \
	man/tide_create_datagram_endpoint.3 man/tide_create_subprocess_shell.3 \
	man/tide_create_unix_connection.3 \
	man/tide_create_unix_server.3 man/tide_current_task.3 man/tide_event_clear.3 \
	man/tide_event_free.3 man/tide_event_is_set.3 man/tide_event_set.3 \
	man/tide_event_wait.3 man/tide_executor_free.3 man/tide_free.3 \
	man/tide_future_add_done_callback.3 man/tide_future_cancel.3 \
	man/tide_future_cancelled.3 man/tide_future_done.3 man/tide_future_error.3 \
	man/tide_future_is_task.3 man/tide_future_loop.3 man/tide_future_ref.3 \
	man/tide_future_remove_done_callback.3 man/tide_future_result.3 \
	man/tide_future_set_error.3 man/tide_future_set_result.3 \
	man/tide_future_take_ptr.3 man/tide_future_unref.3 man/tide_getnameinfo.3 \
	man/tide_handle_cancel.3 \
	man/tide_handle_when.3 man/tide_lock_acquire.3 man/tide_lock_free.3 \
	man/tide_lock_locked.3 man/tide_lock_release.3 man/tide_loop_backend.3 \
	man/tide_loop_backend_reason.3 man/tide_loop_call_exception_handler.3 \
	man/tide_loop_close.3 man/tide_loop_default_exception_handler.3 \
	man/tide_loop_free.3 man/tide_loop_get_debug.3 man/tide_loop_is_closed.3 \
	man/tide_loop_is_running.3 man/tide_loop_new_error.3 man/tide_loop_now_ns.3 \
	man/tide_loop_op_native.3 \
	man/tide_loop_run.3 man/tide_loop_run_once.3 \
	man/tide_loop_run_until_complete.3 man/tide_loop_set_debug.3 \
	man/tide_loop_set_default_executor.3 \
	man/tide_loop_shutdown.3 man/tide_loop_shutdown_default_executor.3 \
	man/tide_loop_stats.3 \
	man/tide_loop_stop.3 man/tide_loop_time.3 man/tide_op_accept.3 \
	man/tide_op_close.3 man/tide_op_connect.3 man/tide_op_poll.3 \
	man/tide_op_recv.3 man/tide_op_recvmsg.3 man/tide_op_send.3 \
	man/tide_op_sendmsg.3 man/tide_op_shutdown.3 man/tide_op_timeout.3 \
	man/tide_op_write.3 man/tide_open_unix_connection.3 man/tide_poll.3 \
	man/tide_process_communicate.3 man/tide_process_free.3 man/tide_process_kill.3 \
	man/tide_process_pid.3 man/tide_process_returncode.3 man/tide_process_send_signal.3 \
	man/tide_process_stderr.3 man/tide_process_stdin.3 man/tide_process_stdout.3 \
	man/tide_process_terminate.3 man/tide_process_wait.3 \
	man/tide_queue_free.3 man/tide_queue_get.3 man/tide_queue_get_nowait.3 \
	man/tide_queue_join.3 man/tide_queue_put.3 man/tide_queue_put_nowait.3 \
	man/tide_queue_size.3 man/tide_queue_task_done.3 man/tide_read.3 \
	man/tide_recv.3 man/tide_recvmsg.3 man/tide_replace_allocator.3 \
	man/tide_run_in_executor.3 man/tide_run_in_executor_ex.3 man/tide_semaphore_acquire.3 \
	man/tide_semaphore_free.3 man/tide_semaphore_locked.3 \
	man/tide_semaphore_release.3 man/tide_semaphore_value.3 man/tide_send.3 \
	man/tide_sendmsg.3 man/tide_server_close.3 man/tide_server_close_clients.3 \
	man/tide_server_free.3 man/tide_server_is_serving.3 man/tide_server_port.3 \
	man/tide_server_serve_forever.3 man/tide_server_sockets.3 \
	man/tide_server_start_serving.3 man/tide_server_wait_closed.3 \
	man/tide_shield.3 man/tide_shutdown.3 man/tide_sleep.3 \
	man/tide_start_server.3 man/tide_start_unix_server.3 man/tide_stream_at_eof.3 \
	man/tide_stream_can_write_eof.3 man/tide_stream_close.3 \
	man/tide_stream_consume.3 man/tide_stream_drain.3 man/tide_stream_free.3 \
	man/tide_stream_get_extra_info.3 man/tide_stream_is_closing.3 \
	man/tide_stream_peek.3 man/tide_stream_readexactly.3 \
	man/tide_stream_readline.3 man/tide_stream_readuntil.3 \
	man/tide_stream_set_deadline.3 man/tide_stream_set_limit.3 \
	man/tide_subprocess_shell.3 man/tide_subprocess_transport_close.3 \
	man/tide_subprocess_transport_get_pid.3 man/tide_subprocess_transport_get_pipe_transport.3 \
	man/tide_subprocess_transport_get_returncode.3 man/tide_subprocess_transport_kill.3 \
	man/tide_subprocess_transport_ref.3 man/tide_subprocess_transport_send_signal.3 \
	man/tide_subprocess_transport_terminate.3 man/tide_subprocess_transport_unref.3 \
	man/tide_stream_set_timeouts.3 man/tide_stream_transport.3 \
	man/tide_stream_wait_closed.3 man/tide_stream_write_eof.3 \
	man/tide_stream_writelines.3 man/tide_task_cancel.3 \
	man/tide_task_cancelling.3 man/tide_task_name.3 man/tide_task_set_name.3 \
	man/tide_task_uncancel.3 man/tide_taskgroup_free.3 man/tide_taskgroup_spawn.3 \
	man/tide_taskgroup_wait.3 man/tide_timeout_exit.3 man/tide_timeout_expired.3 \
	man/tide_timeout_reschedule.3 man/tide_transport_abort.3 \
	man/tide_transport_can_write_eof.3 man/tide_transport_close.3 \
	man/tide_transport_get_extra_info.3 man/tide_transport_get_protocol.3 \
	man/tide_transport_get_write_buffer_limits.3 \
	man/tide_transport_get_write_buffer_size.3 man/tide_transport_is_closing.3 \
	man/tide_transport_is_reading.3 man/tide_transport_loop.3 \
	man/tide_transport_pause_reading.3 man/tide_transport_ref.3 \
	man/tide_transport_resume_reading.3 man/tide_transport_sendto.3 \
	man/tide_transport_set_deadline.3 man/tide_transport_set_write_buffer_limits.3 \
	man/tide_transport_unref.3 \
	man/tide_transport_write_eof.3 man/tide_transport_writelines.3 \
	man/tide_version.3 man/tide_wait.3 man/tide_wait_for.3 man/tide_write.3 \
	man/tide_yield.3

dist_man3_MANS = $(TIDE_MAN3_PAGES) $(TIDE_MAN3_LINKS)

# man/check-man.sh (see its header): groff warnings are errors, every
# function of src/libtide.map is in one page's NAME line and SYNOPSIS and
# found by `man NAME`, every .so link resolves, every page is installed and
# every EXAMPLE compiles. It skips (77) without groff (groff-base).
TESTS += man/check-man.sh
EXTRA_DIST += man/check-man.sh
TIDE_TESTS_ENVIRONMENT += TIDE_MAN_PAGES='$(dist_man3_MANS) $(dist_man7_MANS)' \
	TIDE_MAN_VERSION='$(PACKAGE_VERSION)' TIDE_MAN_CC='$(CC)'; \
	export TIDE_MAN_PAGES TIDE_MAN_VERSION TIDE_MAN_CC;
