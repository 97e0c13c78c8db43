import pytest
import redis

from bullmq_sync import errors


@pytest.mark.parametrize(
    ("code", "cls", "message"),
    [
        (-1, errors.JobNotFound, "Missing key for job 7. reprocessJob"),
        (-2, errors.JobLockNotFound, "Missing lock for job 7. reprocessJob"),
        (-3, errors.JobNotInState, "Job 7 is not in the failed state. reprocessJob"),
        (-4, errors.JobPendingChildren, "Job 7 has pending dependencies. reprocessJob"),
        (-5, errors.ParentJobNotFound, "Missing key for parent job bull:p:1. reprocessJob"),
        (-6, errors.JobLockMismatch, "Lock mismatch for job 7. Cmd reprocessJob from failed"),
        (-7, errors.ParentJobCannotBeReplaced, "The parent job bull:p:1 cannot be replaced. reprocessJob"),
        (-8, errors.JobBelongsToJobScheduler,
         "Job 7 belongs to a job scheduler and cannot be removed directly. reprocessJob"),
        (-9, errors.JobHasFailedChildren,
         "Cannot complete job 7 because it has at least one failed child. reprocessJob"),
        (-10, errors.SchedulerJobIdCollision,
         "Cannot create job scheduler iteration - job ID already exists. reprocessJob"),
        (-11, errors.SchedulerJobSlotsBusy,
         "Cannot create job scheduler iteration - current and next time slots already have jobs."
         " reprocessJob"),
        (-42, errors.UnknownJobError, "Unknown code -42 error for 7. reprocessJob"),
    ],
)
def test_each_code_has_its_class_and_nodes_message(code, cls, message):
    error = errors.job_error(
        code, queue="q", job_id="7", command="reprocessJob", state="failed", parent_key="bull:p:1"
    )
    assert type(error) is cls
    assert error.code == code
    assert str(error) == message
    assert (error.queue, error.job_id, error.command, error.state) == ("q", "7", "reprocessJob", "failed")
    assert isinstance(error, errors.JobError) and isinstance(error, errors.BullMQSyncError)


def test_classes_are_distinct():
    classes = [errors.job_error(c, queue="q", job_id="1", command="x").__class__ for c in range(-11, 0)]
    assert len(set(classes)) == 11


def test_invalid_argument_is_a_value_error():
    assert issubclass(errors.InvalidArgument, ValueError)


def test_no_builtin_names_are_shadowed():
    import builtins

    public = {name for name in dir(errors) if isinstance(getattr(errors, name), type)}
    assert not (public & {"ConnectionError", "TimeoutError"}) or errors.ConnectionError is builtins.ConnectionError


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (redis.exceptions.ConnectionError("x"), True),
        (redis.exceptions.TimeoutError("x"), True),
        (ConnectionResetError("x"), True),
        (redis.exceptions.ReadOnlyError("READONLY You can't write against a read only replica."), True),
        (redis.exceptions.AuthenticationError("x"), False),
        (redis.exceptions.ResponseError("WRONGTYPE"), False),
    ],
)
def test_transient_classification(exc, transient):
    assert errors.is_transient(exc) is transient


def test_mapping():
    mapped = errors.map_redis_error(redis.exceptions.ConnectionError("down"), attempts=3, ambiguous=True)
    assert isinstance(mapped, errors.RedisUnavailable) and mapped.attempts == 3 and mapped.ambiguous
    assert isinstance(
        errors.map_redis_error(redis.exceptions.AuthenticationError("no"), attempts=1, ambiguous=False),
        errors.ConfigurationError,
    )
    assert errors.is_noscript(redis.exceptions.NoScriptError("NOSCRIPT No matching script."))


@pytest.mark.parametrize(
    ("error", "readonly"),
    [
        (redis.exceptions.ReadOnlyError("You can't write against a read only replica."), True),
        # Redis 7: a write refused inside a script keeps its own code
        (redis.exceptions.ResponseError(
            "READONLY You can't write against a read only replica. script: f_ab, on "
            "@user_script:74."), True),
        # Redis 6.2: the same refusal wrapped in the script error
        (redis.exceptions.ResponseError(
            "Error running script (call to f_ab): @user_script:74: @user_script: 74: "
            "-READONLY You can't write against a read only replica."), True),
        (redis.exceptions.ResponseError(
            "Error running script (call to f_ab): @user_script:9: user_script:9: "
            "attempt to compare nil with number"), False),
        (redis.exceptions.ResponseError("ERR wrong number of arguments"), False),
        (redis.exceptions.ConnectionError("READONLY"), False),
    ],
)
def test_a_replica_refusing_a_write_is_recognised_on_redis_6_2_and_7(error, readonly):
    assert errors.is_readonly(error) is readonly
