/* SPDX-License-Identifier: MIT */
/*
 * coro-x86_64.S: the context switch for x86-64 (System V). Only what the
 * ABI says a callee must preserve is saved: rbx, rbp, r12-r15, the MXCSR
 * control bits and the x87 control word. Everything else is dead across a
 * call by contract (rax, rcx and rdx serve as scratch), which is what makes this
 * a dozen instructions.
 *
 * void tide__coro_switch(void **save_sp, void *load_sp)
 *   pushes the callee-saved state on the current stack, stores rsp in
 *   *save_sp, loads load_sp, pops the state saved there and returns into it.
 *
 * A new stack is laid out by tide__coro_prepare (coro.c) so that the first
 * switch to it "returns" into tide__coro_trampoline with r12 = argument and
 * r13 = entry function.
 *
 * Control-flow enforcement (-fcf-protection): <cet.h> marks this object
 * with the IBT and SHSTK properties the compiler was asked for, so the
 * library keeps them. IBT: both entry points start with endbr64, and the
 * jump back into a switch's caller is a notrack jump (its target is a
 * return address, not a branch target, as GCC's own jump tables are).
 * SHSTK: this switch keeps one shadow stack for every task, so coro.c does
 * not use it when a shadow stack is active (see coro.h).
 */
#ifdef __CET__
#include <cet.h>
#else
#define _CET_ENDBR
#endif
#ifdef __CET__
#define TIDE_NOTRACK notrack
#else
#define TIDE_NOTRACK
#endif
	.text
	.globl	tide__coro_switch
	.hidden	tide__coro_switch
	.type	tide__coro_switch, @function
tide__coro_switch:
	.cfi_startproc
	_CET_ENDBR
	pushq	%rbp
	pushq	%rbx
	pushq	%r12
	pushq	%r13
	pushq	%r14
	pushq	%r15
	subq	$8, %rsp
	stmxcsr	(%rsp)
	fnstcw	4(%rsp)
	/* Loading MXCSR and the x87 control word is slow (each a partial
	 * serialisation, about 3 ns together), and they are nearly always
	 * what the other side saved: load them only when they differ. */
	movl	(%rsp), %eax
	movzwl	4(%rsp), %ecx
	movq	%rsp, (%rdi)
	movq	%rsi, %rsp
	cmpl	(%rsp), %eax
	jne	1f
	cmpw	4(%rsp), %cx
	jne	1f
2:	addq	$8, %rsp
	popq	%r15
	popq	%r14
	popq	%r13
	popq	%r12
	popq	%rbx
	popq	%rbp
	/* Not ret: the return stack buffer predicts our own caller, never
	 * the other side's, so a ret here always mispredicts. An indirect
	 * jump is predicted from its history instead (as boost.context's
	 * jump_fcontext does). */
	popq	%rdx
	TIDE_NOTRACK jmp	*%rdx
1:	ldmxcsr	(%rsp)
	fldcw	4(%rsp)
	jmp	2b
	.cfi_endproc
	.size	tide__coro_switch, .-tide__coro_switch

	.globl	tide__coro_trampoline
	.hidden	tide__coro_trampoline
	.type	tide__coro_trampoline, @function
tide__coro_trampoline:
	.cfi_startproc
	.cfi_undefined rip
	_CET_ENDBR
	/* rsp is 16-byte aligned here, as the call below requires. */
	movq	%r12, %rdi
	callq	*%r13
	ud2	/* the entry never returns: it switches away for good */
	.cfi_endproc
	.size	tide__coro_trampoline, .-tide__coro_trampoline

	.section .note.GNU-stack,"",@progbits
