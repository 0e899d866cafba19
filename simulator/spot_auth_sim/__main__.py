# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""``python -m spot_auth_sim``: the same as the ``spot-auth-sim`` command."""

import sys

from .cli import main

sys.exit(main())
