/* SPDX-License-Identifier: MIT */
/*
 * coro-aarch64.S: the context switch for AArch64 (AAPCS64). Only what the
 * ABI says a callee must preserve is saved: x19-x28, the frame pointer
 * x29, the link register x30, the low halves d8-d15 of v8-v15, and FPCR.
 *
 * void tide__coro_switch(void **save_sp, void *load_sp)
 *
 * A new stack is laid out by tide__coro_prepare (coro.c) so that the first
 * switch to it returns (through x30) into tide__coro_trampoline with
 * x19 = argument and x20 = entry function.
 */
	.text
	.globl	tide__coro_switch
	.hidden	tide__coro_switch
	.type	tide__coro_switch, %function
tide__coro_switch:
	sub	sp, sp, #176
	stp	x19, x20, [sp, #0]
	stp	x21, x22, [sp, #16]
	stp	x23, x24, [sp, #32]
	stp	x25, x26, [sp, #48]
	stp	x27, x28, [sp, #64]
	stp	x29, x30, [sp, #80]
	stp	d8, d9, [sp, #96]
	stp	d10, d11, [sp, #112]
	stp	d12, d13, [sp, #128]
	stp	d14, d15, [sp, #144]
	mrs	x9, fpcr
	str	x9, [sp, #160]
	mov	x9, sp
	str	x9, [x0]
	mov	sp, x1
	ldp	x19, x20, [sp, #0]
	ldp	x21, x22, [sp, #16]
	ldp	x23, x24, [sp, #32]
	ldp	x25, x26, [sp, #48]
	ldp	x27, x28, [sp, #64]
	ldp	x29, x30, [sp, #80]
	ldp	d8, d9, [sp, #96]
	ldp	d10, d11, [sp, #112]
	ldp	d12, d13, [sp, #128]
	ldp	d14, d15, [sp, #144]
	ldr	x9, [sp, #160]
	msr	fpcr, x9
	add	sp, sp, #176
	ret
	.size	tide__coro_switch, .-tide__coro_switch

	.globl	tide__coro_trampoline
	.hidden	tide__coro_trampoline
	.type	tide__coro_trampoline, %function
tide__coro_trampoline:
	mov	x0, x19
	blr	x20
	brk	#0	/* the entry never returns: it switches away for good */
	.size	tide__coro_trampoline, .-tide__coro_trampoline

	.section .note.GNU-stack,"",%progbits
