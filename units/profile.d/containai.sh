# containai: login shells load the workspace environment written by containai-init.service.
if [ -r /usr/local/lib/containai/bash_env ]; then
    . /usr/local/lib/containai/bash_env
fi
