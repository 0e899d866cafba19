from __future__ import absolute_import, division, print_function
__metaclass__ = type
import json

def test_proto(fleet_factory, run_playbook, secrets):
    pass
    fleet, inventory = fleet_factory(robots=1)
    run = run_playbook("""
- hosts: spot
  gather_facts: false
  tasks:
    - name: module port
      spot.auth.token:
        port: true
      ignore_errors: true
    - name: lookup port
      ansible.builtin.debug:
        msg: "{{ lookup('spot.auth.token', port=value) | length }}"
      vars:
        value: true
      ignore_errors: true
    - name: module password
      spot.auth.token:
        password: [Secret-In-List-1, b]
      ignore_errors: true
    - name: lookup password
      ansible.builtin.debug:
        msg: "{{ lookup('spot.auth.token', password=value) | length }}"
      vars:
        value: [Secret-In-List-1, b]
      ignore_errors: true
    - name: lookup pasword
      ansible.builtin.debug:
        msg: "{{ lookup('spot.auth.token', pasword='x') | length }}"
      ignore_errors: true
""", inventory)
    print(json.dumps(run.data, indent=1))
    print(run.text[-6000:])
    assert 0
