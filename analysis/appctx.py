"""Keeping ONE Flask app context current for a whole notebook session, across cells and threads.

Flask-SQLAlchemy scopes ``db.session`` by the identity of the current app context, so a
notebook needs the same context object current in every cell: pushing a new context per cell
would silently create, and leak, a new session per cell. But context variables do not always
carry from cell to cell (IPython runs async cells in tasks of their own, each with a copy of
the context), nor into new threads.

:class:`ContextKeeper` pushes the context once with Flask's public ``AppContext.push()`` and
takes a snapshot of the context variables right after (:func:`contextvars.copy_context`).
Wherever the context has been lost, :meth:`ContextKeeper.activate` sets the variable that
holds it back to it, found in that snapshot by its value; nothing of Flask's private names is
used, so this holds whether Flask keeps one token per push (3.1) or counts pushes (its main
branch). :meth:`ContextKeeper.close` tears the context down with the public calls
(``do_teardown_appcontext``, ``appcontext_popped``) and makes whatever was current before
current again, in whichever thread or cell it runs.
"""

from __future__ import annotations

import contextvars
import typing as t

import flask
from flask.signals import appcontext_popped

if t.TYPE_CHECKING:
    from flask.ctx import AppContext


class ContextKeeper:
    """One pushed app context, made current again wherever it was lost."""

    def __init__(self, app: flask.Flask) -> None:
        self.app = app
        self.ctx: AppContext = app.app_context()
        self._var: contextvars.ContextVar[t.Any] | None = None
        self._previous: t.Any = None
        #: A context popped under this one (see :meth:`follows`): not to be left current, and
        #: the token of making this one current again after it, to undo that.
        self._replaced: t.Any = None
        self._after_replaced: contextvars.Token[t.Any] | None = None
        self._pushed = False

    def push(self) -> None:
        """Push the context here, and remember which context variable holds it."""
        if self._pushed:
            return
        before = contextvars.copy_context()
        self.ctx.push()
        self._pushed = True
        after = contextvars.copy_context()
        self._var = next((var for var, value in after.items() if value is self.ctx), None)
        if self._var is not None:
            self._previous = before.get(self._var)

    def follows(self, replaced: ContextKeeper) -> None:
        """This context was pushed while ``replaced``'s was current, and ``replaced`` has been
        closed since (which made what was current before it current again). Make this one
        current, and when it closes, undo that rather than let Flask restore ``replaced``'s
        context, which no longer exists."""
        self._previous = replaced._previous
        self._replaced = replaced.ctx
        if self._var is not None:
            self._after_replaced = self._var.set(self.ctx)

    def is_current(self) -> bool:
        """Whether this context is the current one here."""
        # app_ctx is a werkzeug LocalProxy; _get_current_object() is its documented way to the object.
        proxy: t.Any = flask.globals.app_ctx
        return flask.has_app_context() and proxy._get_current_object() is self.ctx

    def activate(self) -> None:
        """Make the context current here (another cell, another thread), if it is not."""
        if self._pushed and not self.is_current() and self._var is not None:
            self._var.set(self.ctx)

    def close(self) -> None:
        """Tear the context down and make the one that was current before current again.

        Pops the context with Flask's ``pop()``, which runs the app's teardown functions. A
        context pushed in another cell or thread cannot have its token reset here: Flask has
        then run the teardown already, and the variable is set back by hand. Idempotent.
        """
        if not self._pushed:
            return
        self._pushed = False
        if self._var is not None and not self.is_current():
            self._var.set(self.ctx)
        try:
            self.ctx.pop()
        except ValueError:  # the token belongs to another contextvars.Context
            appcontext_popped.send(self.app, _async_wrapper=self.app.ensure_sync)
        except (RuntimeError, AssertionError):  # not poppable here at all: tear down by hand
            self.app.do_teardown_appcontext(None)
            appcontext_popped.send(self.app, _async_wrapper=self.app.ensure_sync)
        finally:
            if self._var is not None:
                now = self._var.get(None)
                if self._replaced is not None and now is self._replaced and self._after_replaced is not None:
                    try:
                        self._var.reset(self._after_replaced)  # back to what was before `replaced`
                    except (ValueError, RuntimeError):  # set in another contextvars.Context
                        self._var.set(self._previous)
                    self._after_replaced = None
                elif now is self.ctx:
                    self._var.set(self._previous)
