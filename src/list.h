/* SPDX-License-Identifier: MIT */
/*
 * The engine's one intrusive list type: a circular doubly linked list with
 * a sentinel head, like the kernel's list_head. A node that is on no list
 * points to itself, so "is it listed?" is tp__list_linked(node) and
 * removing is O(1) and idempotent. Depends on nothing.
 */
#ifndef TP_LIST_H
#define TP_LIST_H

#include <stdbool.h>
#include <stddef.h>

typedef struct tp__list {
    struct tp__list *prev, *next;
} tp__list;

static inline void tp__list_init(tp__list *n)
{
    n->prev = n->next = n;
}

static inline bool tp__list_empty(const tp__list *head)
{
    return head->next == head;
}

/* For a node: true while it is on a list. */
static inline bool tp__list_linked(const tp__list *n)
{
    return n->next != n;
}

static inline void tp__list_insert_before(tp__list *at, tp__list *n)
{
    n->prev = at->prev;
    n->next = at;
    at->prev->next = n;
    at->prev = n;
}

static inline void tp__list_push_back(tp__list *head, tp__list *n)
{
    tp__list_insert_before(head, n);
}

static inline void tp__list_push_front(tp__list *head, tp__list *n)
{
    tp__list_insert_before(head->next, n);
}

static inline void tp__list_remove(tp__list *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    tp__list_init(n);
}

/* The first/last node, or NULL if the list is empty. */
static inline tp__list *tp__list_first(const tp__list *head)
{
    return head->next == head ? NULL : head->next;
}

static inline tp__list *tp__list_last(const tp__list *head)
{
    return head->prev == head ? NULL : head->prev;
}

/* The struct that contains node n as its member m. */
#define tp__container(n, type, m) ((type *)((char *)(n)-offsetof(type, m)))

/* Iterates over head's nodes; the current one may be removed. */
#define tp__list_each(it, next_, head)                                         \
    for (tp__list *it = (head)->next, *next_ = it->next; it != (head);         \
         it = next_, next_ = it->next)

#endif
