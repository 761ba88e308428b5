from __future__ import annotations

import base64
import smtplib
import ssl

import pytest

from ictq.errors import Fail, Release
from ictq.mail.delivery import outcome
from ictq.mail.errors import SendProblem, classify, password_forms
from ictq.mail.notifications import Notification
from ictq.mail.settings import MailSettings, Security
from ictq.policy import delay_after


@pytest.mark.parametrize(
    ("exc", "permanent", "reason"),
    [
        (smtplib.SMTPRecipientsRefused({"a@x.test": (550, b"5.1.1 User unknown")}), True,
         "recipient a@x.test refused: 550 5.1.1 User unknown"),
        (smtplib.SMTPRecipientsRefused({"a@x.test": (450, b"4.2.1 Mailbox busy")}), False,
         "recipient a@x.test refused: 450 4.2.1 Mailbox busy"),
        (smtplib.SMTPDataError(451, b"4.3.0 Try later"), False, "the message was refused: 451 4.3.0 Try later"),
        (smtplib.SMTPDataError(554, b"5.7.1 Spam"), True, "the message was refused: 554 5.7.1 Spam"),
        (smtplib.SMTPSenderRefused(553, b"5.7.1 Not yours", "noreply@x.test"), True,
         "the sender was refused: 553 5.7.1 Not yours"),
        (smtplib.SMTPConnectError(421, b"4.7.0 Too busy"), False,
         "the mail server refused the connection: 421 4.7.0 Too busy"),
        (smtplib.SMTPAuthenticationError(535, b"5.7.8 Bad credentials"), True,
         "SMTP authentication failed: 535 5.7.8 Bad credentials"),
        (smtplib.SMTPAuthenticationError(454, b"4.7.0 Temporary auth failure"), False,
         "SMTP authentication failed: 454"),
        (smtplib.SMTPServerDisconnected("Connection unexpectedly closed"), False, "closed the connection"),
        (ConnectionRefusedError(111, "Connection refused"), False,
         "cannot talk to the mail server: ConnectionRefusedError: Connection refused"),
        (TimeoutError("timed out"), False, "cannot talk to the mail server: TimeoutError: timed out"),
        (smtplib.SMTPNotSupportedError("STARTTLS extension not supported by server."), True,
         "does not support what is needed: STARTTLS extension not supported"),
        (smtplib.SMTPException("No suitable authentication method found."), True,
         "SMTPException: No suitable authentication method found."),
    ],
)
def test_classify(exc: BaseException, permanent: bool, reason: str) -> None:
    problem = classify(exc)
    assert problem.permanent is permanent
    assert reason in problem.reason


def test_certificate_failures_are_permanent_and_say_what_to_do() -> None:
    exc = ssl.SSLCertVerificationError(1, "certificate verify failed")
    exc.verify_message = "self-signed certificate"
    problem = classify(exc)
    assert problem.permanent
    assert "self-signed certificate" in problem.reason and "MAIL_CA_FILE" in problem.reason


def test_the_password_is_masked_in_every_form() -> None:
    password = "pa55-Word"
    plain = base64.b64encode(b"\0ict\0pa55-Word").decode()
    login = base64.b64encode(b"pa55-Word").decode()
    exc = smtplib.SMTPAuthenticationError(535, f"rejected {plain} / {login} / {password}".encode())
    reason = classify(exc, "ict", password).reason
    assert password not in reason and plain not in reason and login not in reason
    assert reason == "SMTP authentication failed: 535 rejected ******** / ******** / ********"
    assert password_forms("ict", "") == ()


def notification(tries: int = 5) -> Notification:
    return Notification("password_reset", tries, (10, 60, 300), None)


def settings(backoff: tuple[int, ...] | None = None) -> MailSettings:
    return MailSettings("smtp", "127.0.0.1", 25, "", "", Security.NONE, True, None, 5.0, None,
                        "noreply@x.test", "X", "X", "http://x.test", "ru", backoff, None)


def test_temporary_problems_release_with_the_backoff_of_the_attempt() -> None:
    problem = SendProblem(False, "451 later")
    for attempt, delay in ((1, 10), (2, 60), (3, 300), (4, 300)):
        result = outcome(problem, notification(), attempt, settings())
        assert isinstance(result, Release) and result.delay == delay and result.reason == "451 later"
    result = outcome(problem, notification(), 2, settings(backoff=(1, 2)))
    assert isinstance(result, Release) and result.delay == 2


def test_the_last_attempt_fails_with_the_reason() -> None:
    result = outcome(SendProblem(False, "451 later"), notification(tries=3), 3, settings())
    assert isinstance(result, Fail) and str(result) == "451 later (gave up: attempt 3 of 3)"
    unlimited = outcome(SendProblem(False, "451 later"), notification(tries=0), 50, settings())
    assert isinstance(unlimited, Release)


def test_permanent_problems_fail_at_once() -> None:
    result = outcome(SendProblem(True, "550 no such user"), notification(), 1, settings())
    assert isinstance(result, Fail) and str(result) == "550 no such user"


def test_mail_retries_wait_by_the_backoff_rule_of_every_job() -> None:
    assert delay_after((), 3) == 0
    assert [delay_after((5, 7), n) for n in (0, 1, 2, 3)] == [5, 5, 7, 7]
