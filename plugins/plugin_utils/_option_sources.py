# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Where the controller finds the options of spot.auth.token, for the action plugin and the lookup alike.

Values are gathered as they were written (task arguments or lookup keywords, inventory variables,
environment variables, ansible.cfg's ``[spot_auth]`` section), templated where Ansible templates them
(so vault values are decrypted), and never converted here: ``_options.settings_from`` is the one
parser, so a misspelt boolean is an error wherever it is written, never a silent false.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import configparser
import os

from ansible import constants as C
from ansible.parsing.quoting import unquote
from ansible_collections.spot.auth.plugins.module_utils import _options

CONFIG_SECTION = "spot_auth"
_CONFIG_CACHE = {}  # (path, mtime) -> the section's raw values


def config_file_options(path=None):
    """The raw values of ansible.cfg's ``[spot_auth]`` keys, by key.

    Relative paths are taken relative to the file, as Ansible does for its own path settings. A file
    Ansible could not read either yields nothing here (Ansible reports it).
    """
    path = path or C.CONFIG_FILE
    if not path:
        return {}
    try:
        key = (path, os.stat(path).st_mtime_ns)
    except OSError:
        return {}
    if key not in _CONFIG_CACHE:
        parser = configparser.ConfigParser(inline_comment_prefixes=(";",), interpolation=None)
        try:
            parser.read(path, encoding="utf-8")
        except (configparser.Error, UnicodeError, OSError):
            parser = configparser.ConfigParser()
        section = parser[CONFIG_SECTION] if parser.has_section(CONFIG_SECTION) else {}
        values = {}
        for name, config_key in _options.CONFIG_KEYS.items():
            value = section.get(config_key)
            if value is None:
                continue
            value = unquote(value.strip())
            if _options.OPTION_SPEC[name]["type"] == "path" and value:
                value = os.path.join(os.path.dirname(os.path.abspath(path)), os.path.expanduser(value))
            values[config_key] = value
        _CONFIG_CACHE.clear()
        _CONFIG_CACHE[key] = values
    return dict(_CONFIG_CACHE[key])


def host_variables(source, templar, inventory_name=None):
    """The inventory variables in ``source`` that options fall back to, templated (vault values decrypted)."""
    found = {}
    for name in _options.HOST_VARS.values():
        value = source.get(name)
        if value is not None:
            found[name] = templar.template(value)
    if found.get("ansible_host") is None and inventory_name:
        found["ansible_host"] = inventory_name
    return found


def gather(arguments, host_vars, environ=None):
    """The raw option values of one handshake: ``arguments`` first, then ``host_vars``, the environment, ansible.cfg."""
    return _options.apply_fallbacks(arguments, host_vars, environ=environ, config=config_file_options())
