#!/usr/bin/python3
# hotpatch.py - an Ansible module around `hotpatch install`, `uninstall` and
# `status` on one host: it runs them with --json and turns their documents
# into Ansible's changed/failed and a per-host report.  It never applies or
# reverts by itself (hotpatch does) and never edits the store.

DOCUMENTATION = r'''
module: hotpatch
short_description: install, uninstall or check live patches with hotpatch
description:
  - C(state=present) runs C(hotpatch install --json PATH); changed only when
    the store got new bytes or some process had the patch applied now (not
    when every process says C(already applied)).
  - C(state=absent) runs C(hotpatch uninstall --json NAME); a name that is not
    installed is no change.
  - C(state=status) runs C(hotpatch status --json) and reports, per process,
    where installed patches are applied, not applied or failed, and where
    an applied one leaves fixes out (excluded); never a change. C(as_installed) is false when hotpatch says not every
    process is as installed (status exit 1).
options:
  state:
    description: what to do on the host
    choices: [present, absent, status]
    default: status
    type: str
  path:
    description: the patch file on the host (present)
    type: path
  name:
    description: the patch's name, as HOTPATCH_NAME gave it (absent)
    type: str
  exclude:
    description: fix ids, each passed as --exclude ID (present)
    type: list
    elements: str
    default: []
  timeout:
    description: passed as --timeout SECONDS (present)
    type: int
  store:
    description: the store directory (HOTPATCH_STORE); by default /var/lib/hotpatch
    type: path
  executable:
    description: the hotpatch command
    type: path
    default: hotpatch
'''

import json

from ansible.module_utils.basic import AnsibleModule

KNOWN_STATES = ('applied', 'not applied', 'failed')


def run_json(module, arguments):
    """Runs hotpatch with ARGUMENTS; returns (exit code, document, stderr).
    The document is None when stdout is not one JSON object."""
    environment = {}
    if module.params['store']:
        environment['HOTPATCH_STORE'] = module.params['store']
    command = [module.params['executable']] + arguments
    rc, out, err = module.run_command(command, environ_update=environment)
    try:
        document = json.loads(out)
    except ValueError:
        document = None
    if not isinstance(document, dict):
        module.fail_json(msg='%s printed no JSON document (exit %d): %s'
                         % (' '.join(command), rc, err.strip()),
                         exit_code=rc, stdout=out, stderr=err)
    return rc, document, err


def error_text(document, stderr):
    error = document.get('error') or {}
    return error.get('message') or stderr.strip() or 'exit %s' % document.get('exit_code')


def failed_processes(document):
    """The per-process documents of a fan-out that failed, as short dicts."""
    return [{'pid': p.get('pid'), 'exit_code': p.get('exit_code'),
             'error': (p.get('error') or {}).get('message')}
            for p in document.get('processes') or [] if not p.get('ok')]


def install(module):
    arguments = ['install', '--json']
    for fix in module.params['exclude']:
        arguments += ['--exclude', fix]
    if module.params['timeout'] is not None:
        arguments += ['--timeout', str(module.params['timeout'])]
    rc, document, stderr = run_json(module, arguments + ['--', module.params['path']])
    installed = document.get('installed') or {}
    processes = document.get('processes') or []
    applied_now = [p.get('pid') for p in processes
                   if p.get('ok') and (p.get('patch') or {}).get('state') == 'applied']
    result = dict(changed=not installed.get('unchanged', True) or bool(applied_now),
                  name=installed.get('name'), sha256=installed.get('sha256'),
                  store_path=installed.get('path'), applied_now=applied_now,
                  processes=len(processes), exit_code=rc)
    if rc != 0:
        module.fail_json(msg='hotpatch install %s failed: %s'
                         % (module.params['path'], error_text(document, stderr)),
                         failures=failed_processes(document), **result)
    module.exit_json(**result)


def uninstall(module):
    rc, document, stderr = run_json(module, ['uninstall', '--json', '--', module.params['name']])
    kind = (document.get('error') or {}).get('kind')
    if rc == 4 and kind == 'not_installed':
        module.exit_json(changed=False, name=module.params['name'], reverted=[], exit_code=rc)
    reverted = [p.get('pid') for p in document.get('processes') or [] if p.get('ok')]
    result = dict(name=module.params['name'], reverted=reverted, exit_code=rc)
    if rc != 0:
        # Some reverts may have succeeded: that is a change all the same.
        module.fail_json(msg='hotpatch uninstall %s failed: %s'
                         % (module.params['name'], error_text(document, stderr)),
                         changed=bool(reverted), failures=failed_processes(document), **result)
    module.exit_json(changed=True, **result)


def report_of(document):
    """Buckets every installed patch of every process by its state."""
    report = dict(installed=[], unreadable=[], applied=[], excluded=[], **{
        state.replace(' ', '_'): [] for state in KNOWN_STATES if state != 'applied'})
    report['other'] = []
    for entry in document.get('installed') or []:
        if entry.get('error'):
            report['unreadable'].append({'name': entry.get('name'),
                                         'error': entry['error'].get('message')})
        else:
            report['installed'].append(entry.get('name'))
    for process in document.get('processes') or []:
        for patch in process.get('patches') or []:
            if not patch.get('installed'):
                continue  # applied by hand, not this store's business
            state = patch.get('state')
            bucket = state.replace(' ', '_') if state in KNOWN_STATES else 'other'
            entry = {'pid': process.get('pid'), 'exe': process.get('exe'),
                     'patch': patch.get('name'), 'state': state}
            if patch.get('reason'):
                entry['reason'] = patch['reason']
            report[bucket].append(entry)
            if state == 'applied' and patch.get('excluded'):
                report['excluded'].append(dict(entry, fixes=patch['excluded']))
        if process.get('error'):
            report['other'].append({'pid': process.get('pid'), 'exe': process.get('exe'),
                                    'patch': None, 'state': process['error']})
    return report


def summary_of(report, as_installed):
    def pids(entries):
        return ', '.join('%s (%s %s)' % (e['pid'], e['patch'], e['exe']) for e in entries) or 'none'
    return ['installed: %s' % (', '.join(report['installed']) or 'nothing'),
            'patched: %s' % pids(report['applied']),
            'not applied: %s' % pids(report['not_applied']),
            'failed: %s' % pids(report['failed'] + report['other']),
            'excluded: %s' % pids(report['excluded']),
            'unreadable in the store: %s' % (', '.join(u['name'] for u in report['unreadable'])
                                             or 'none'),
            'every process is as installed' if as_installed
            else 'some processes are not as installed']


def status(module):
    rc, document, stderr = run_json(module, ['status', '--json'])
    if rc not in (0, 1) or 'processes' not in document:
        module.fail_json(msg='hotpatch status failed: %s' % error_text(document, stderr),
                         exit_code=rc)
    report = report_of(document)
    as_installed = rc == 0
    module.exit_json(changed=False, as_installed=as_installed, store=document.get('store'),
                     report=report, summary=summary_of(report, as_installed), exit_code=rc)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(choices=['present', 'absent', 'status'], default='status'),
            path=dict(type='path'),
            name=dict(type='str'),
            exclude=dict(type='list', elements='str', default=[]),
            timeout=dict(type='int'),
            store=dict(type='path'),
            executable=dict(type='path', default='hotpatch'),
        ),
        required_if=[('state', 'present', ['path']), ('state', 'absent', ['name'])],
        supports_check_mode=True,
    )
    if module.params['state'] == 'status':
        status(module)
    if module.check_mode:
        module.exit_json(changed=False, skipped=True,
                         msg='check mode: hotpatch %s was not run' % module.params['state'])
    if module.params['state'] == 'present':
        install(module)
    uninstall(module)


if __name__ == '__main__':
    main()
