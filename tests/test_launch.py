"""The launch helpers: a free master port for single-node runs, the user's flags passed through otherwise."""

import socket

from mmreason.launch import split_at_config, with_master_port
from mmreason.ports import free_port


def test_free_port_is_bindable():
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_single_node_gets_a_port_unless_one_is_given():
    args = with_master_port(["--num_gpus", "2"])
    assert args[:2] == ["--num_gpus", "2"] and args[2] == "--master_port" and int(args[3]) > 0
    assert with_master_port(["--master_port", "29600"]) == ["--master_port", "29600"]
    assert with_master_port(["--master_port=29600"]) == ["--master_port=29600"]


def test_multi_node_flags_are_left_alone():
    assert with_master_port(["--hostfile", "hosts"]) == ["--hostfile", "hosts"]
    assert with_master_port(["--num_nodes", "2", "--master_addr", "n0"]) == ["--num_nodes", "2", "--master_addr", "n0"]


def test_train_arguments_start_at_the_config():
    assert split_at_config(["--num_gpus", "8", "--config", "c.yaml", "a.b=1"]) == (["--num_gpus", "8"], ["--config", "c.yaml", "a.b=1"])
    assert split_at_config(["--config=c.yaml"]) == ([], ["--config=c.yaml"])
