"""Sign-in before clinical mode, the first administrator on a new clinic store, and the idle lock.

Accounts and passwords live in the clinic store (workstation.store.operators; docs/records.md). The Argon2 check
takes tens of milliseconds and 64 MiB, so every store call here runs on a worker thread; the page only shows words.
The page never opens a dialog that waits: it is a page of the window, like the others.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PyQt6.QtCore import QEvent, QObject, Qt, QTimer
from PyQt6.QtWidgets import (
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from workstation.ui.bus_bridge import Tasks
from workstation.ui.messages import user_text

SignedIn = Callable[[Any], None]  # receives the workstation.store.operators.Operator


class SignInPage(QWidget):
    """Three uses: sign in (account and password), create the clinic's first account (an administrator, on a
    store with none), and unlock after the idle lock (the signed-in account's password only)."""

    def __init__(self, store_path: Callable[[], Path], notify: Callable[[str, str], None],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._store_path, self._notify = store_path, notify
        self._tasks = Tasks("sign-in", self)
        self._on_done: SignedIn = lambda _op: None
        self._on_cancel: Callable[[], None] = lambda: None
        self._mode = "sign_in"
        self._action = "clinical"

        self.title = QLabel()
        self.title.setObjectName("sign_in_title")
        self.title.setStyleSheet("font-size:18px;font-weight:bold")
        self.explain = QLabel()
        self.explain.setWordWrap(True)
        box = QGroupBox()
        form = QFormLayout(box)
        self.account = QLineEdit()
        self.account.setObjectName("sign_in_account")
        self.account.setPlaceholderText("your account, e.g. dr-a")
        self.display_name = QLineEdit()
        self.display_name.setObjectName("sign_in_display_name")
        self.display_name.setPlaceholderText("e.g. Dr A. Example")
        self.password = QLineEdit()
        self.password.setObjectName("sign_in_password")
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.password_again = QLineEdit()
        self.password_again.setObjectName("sign_in_password_again")
        self.password_again.setEchoMode(QLineEdit.EchoMode.Password)
        form.addRow("Account", self.account)
        form.addRow("Name", self.display_name)
        form.addRow("Password", self.password)
        form.addRow("Password again", self.password_again)
        self._rows = {w: form.labelForField(w) for w in (self.display_name, self.password_again)}
        self.submit = QPushButton("Sign in")
        self.submit.setObjectName("sign_in_button")
        self.submit.setDefault(True)
        self.submit.clicked.connect(self._submit)
        self.password.returnPressed.connect(self._submit)
        self.password_again.returnPressed.connect(self._submit)
        self.cancel = QPushButton("Cancel")
        self.cancel.setObjectName("sign_in_cancel")
        self.cancel.clicked.connect(lambda: self._on_cancel())
        form.addRow(self.submit)
        form.addRow(self.cancel)
        column = QWidget()
        column.setMaximumWidth(560)  # a form to read at a glance, not stretched across a wide screen
        inner = QVBoxLayout(column)
        inner.addWidget(self.title)
        inner.addWidget(self.explain)
        inner.addWidget(box)
        layout = QHBoxLayout(self)
        layout.addStretch(1)
        layout.addWidget(column, 0, Qt.AlignmentFlag.AlignTop)
        layout.addStretch(1)

    # --- the three uses ----------------------------------------------------------------------------------------
    def begin(self, action: str, account_hint: str, on_done: SignedIn, on_cancel: Callable[[], None]) -> None:
        """Ask for an account allowed to `action` (clinical, …); on a store without accounts, ask for the first
        administrator instead. `on_done(operator)` on the GUI thread after success."""
        self._action, self._on_done, self._on_cancel = action, on_done, on_cancel
        self.account.setText(account_hint.strip())
        self.account.setReadOnly(False)
        self.cancel.setVisible(True)
        self._clear_secrets()
        self._show("sign_in")  # until the store says whether it has accounts
        self.submit.setEnabled(False)

        def count(store: Any) -> int:
            from workstation.store import operators as ops

            return len(ops.operators(store))

        def counted(n: int) -> None:
            self.submit.setEnabled(True)
            self._show("sign_in" if n else "first_admin")

        self._with_store(count, counted)

    def lock(self, account: str, on_unlocked: SignedIn) -> None:
        """The idle lock: only `account`'s password unlocks (another person goes back to the start page)."""
        self._action, self._on_done = "clinical", on_unlocked
        self.account.setText(account)
        self.account.setReadOnly(True)
        self.cancel.setVisible(False)
        self._clear_secrets()
        self._show("locked")
        self.submit.setEnabled(True)
        self.password.setFocus()

    def shutdown(self) -> None:
        """Wait for a sign-in in progress (the window is closing)."""
        self._tasks.shutdown(wait=True)

    # --- inside ----------------------------------------------------------------------------------------------
    def _show(self, mode: str) -> None:
        self._mode = mode
        first = mode == "first_admin"
        for w in (self.display_name, self.password_again):
            w.setVisible(first)
            self._rows[w].setVisible(first)
        if first:
            self.title.setText("Create the clinic's administrator account")
            self.explain.setText("This clinic store has no accounts yet. The first account is the administrator: it "
                                 "creates the clinicians' accounts (`operators add`) and can treat. Choose a password of "
                                 "at least 10 characters and keep it safe; every record is signed with the account "
                                 "that made it.")
            self.submit.setText("Create and sign in")
        elif mode == "locked":
            self.title.setText("Locked after a time without input")
            self.explain.setText(f"The window locked itself: type the password of {self.account.text()} to go on. "
                                 "Someone else: press ◀ Start page (this ends the clinical mode).")
            self.submit.setText("Unlock")
        else:
            self.title.setText("Sign in for clinical mode")
            self.explain.setText("Every plan, change, acknowledgement and recording is kept with your account.")
            self.submit.setText("Sign in")
        (self.display_name if first and self.account.text() else self.account if not self.account.text()
         else self.password).setFocus()

    def _clear_secrets(self) -> None:
        self.password.clear()
        self.password_again.clear()

    def _with_store(self, fn: Callable[[Any], Any], done: Callable[[Any], None]) -> None:
        path = self._store_path()

        def work() -> Any:
            from workstation.store import ClinicStore

            with ClinicStore.open(path, training=False) as store:
                return fn(store)

        def failed(exc: Exception) -> None:
            self.submit.setEnabled(True)
            self._notify(user_text(exc), "error")

        self._tasks.run(work, done, failed)

    def _submit(self) -> None:
        if not self.submit.isEnabled():
            return
        account, password = self.account.text().strip(), self.password.text()
        again, name, mode, action = self.password_again.text(), self.display_name.text(), self._mode, self._action
        self._clear_secrets()
        if mode == "first_admin" and password != again:
            self._notify("The two passwords differ: type the same password twice.", "error")
            return
        if not account or not password:
            self._notify("Type your account and your password.", "error")
            return
        self.submit.setEnabled(False)

        def work(store: Any) -> Any:
            from workstation.store import operators as ops

            if mode == "first_admin":
                if ops.operators(store):  # another workstation created one meanwhile
                    return ops.sign_in(store, account, password, action)
                ops.add(store, account, name, "administrator", password, created_by=f"first start ({store.actor})",
                        first=True)
            return ops.sign_in(store, account, password, action)

        def done(op: Any) -> None:
            self.submit.setEnabled(True)
            self._on_done(op)

        self._with_store(work, done)


class IdleWatch(QObject):
    """Time since the last key press or mouse action in the application; `check()` calls `on_idle` once when it
    passes `minutes` (0 = never) while `armed()` says a lock makes sense (clinical mode, no step running: a
    lock never hides STOP while a device works)."""

    def __init__(self, minutes: float, armed: Callable[[], bool], on_idle: Callable[[], None],
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.minutes, self._armed, self._on_idle = float(minutes), armed, on_idle
        self.last_input = time.monotonic()
        self.timer = QTimer(self)
        self.timer.setInterval(5000)
        self.timer.timeout.connect(self.check)
        self.timer.start()

    INPUT = {QEvent.Type.KeyPress, QEvent.Type.MouseButtonPress, QEvent.Type.Wheel}

    def eventFilter(self, watched: QObject | None, event: QEvent | None) -> bool:  # noqa: N802 - Qt's name
        if event is not None and event.type() in self.INPUT:
            self.last_input = time.monotonic()
        return False

    def check(self) -> None:
        if self.minutes <= 0:
            return
        if not self._armed():  # the time counts from when a lock would make sense
            self.last_input = time.monotonic()
            return
        if time.monotonic() - self.last_input >= self.minutes * 60:
            self.last_input = time.monotonic()
            self._on_idle()
