{#-
    The on-run-end hook: after every dbt command, append to schema validation what Mary
    needs to see which rules failed on which source rows, run after run:

    validation.runs            one row per dbt invocation (id, command, when, counts)
    validation.rule_results    one row per business rule tested in the run (seeds/business_rules.csv:
                               tests with meta rule_id): rows checked, rows failing, status
    validation.exceptions      one row per failing source row per rule (the test's failing rows,
                               with lineage and the offending value) and per quarantined row
                               (customer_quarantine, delivery_quarantine; the reason is the code)
    validation.reconciliation  validation.source_reconciliation (rows read, final, merged,
                               quarantined, difference per source), copied per run

    History is kept: nothing is updated or deleted, every row carries its run_id (dbt's
    invocation_id). The views validation.rule_status (each rule's latest result) and
    validation.latest_exceptions (each rule's failing rows as of its latest result, and the
    newest quarantine) are what Mary reads first.
    Quarantined rows and reconciliation are recorded by runs that build or test the marts.
-#}
{% macro record_validation(results) -%}
    {%- if not execute -%}
        {{ return('') }}
    {%- endif -%}
    {%- set run_id = invocation_id -%}
    {%- set rules = {} -%}
    {%- set catalogue = validation_relation('business_rules') -%}
    {%- if catalogue is not none -%}
        {%- for row in run_query(
            'select rule_id, entity, severity, column_name, description_zh, description_en from '
            ~ catalogue).rows -%}
            {%- do rules.update({row[0]: row}) -%}
        {%- endfor -%}
    {%- endif -%}

    create schema if not exists validation;

    create table if not exists validation.runs (
        run_id text primary key,
        command text,
        target text,
        started_at timestamptz,
        finished_at timestamptz not null default now(),
        nodes integer,
        failed integer,
        warned integer
    );

    create table if not exists validation.rule_results (
        run_id text not null references validation.runs (run_id),
        rule_id text not null,
        test_name text not null,
        entity text,
        severity text,
        description_zh text,
        description_en text,
        model text,
        rows_checked bigint,
        rows_failing bigint,
        status text not null,
        checked_at timestamptz not null default now(),
        primary key (run_id, test_name)
    );

    create table if not exists validation.exceptions (
        run_id text not null references validation.runs (run_id),
        kind text not null check (kind in ('rule', 'quarantine')),
        code text not null,
        severity text,
        entity text,
        source_file text,
        source_sheet text,
        source_row integer,
        column_name text,
        value text,
        client_code text,
        record_key text,
        record jsonb,
        recorded_at timestamptz not null default now()
    );
    create index if not exists exceptions_run_code on validation.exceptions (run_id, code);
    create index if not exists exceptions_source
        on validation.exceptions (source_file, source_sheet, source_row);

    create table if not exists validation.reconciliation (
        run_id text not null references validation.runs (run_id),
        entity text,
        source_file text,
        source_sheet text,
        rows_read bigint,
        final bigint,
        merged bigint,
        quarantined bigint,
        difference bigint,
        recorded_at timestamptz not null default now()
    );

    insert into validation.runs (run_id, command, target, started_at, nodes, failed, warned)
    values (
        '{{ run_id }}',
        '{{ flags.WHICH }}',
        '{{ target.name }}',
        '{{ run_started_at }}',
        {{ results | length }},
        {{ results | selectattr('status', 'in', ['fail', 'error']) | list | length }},
        {{ results | selectattr('status', 'equalto', 'warn') | list | length }}
    )
    on conflict (run_id) do nothing;

    {% for result in results
        if result.node.resource_type == 'test' and result.node.config.meta.get('rule_id') -%}
        {%- set node = result.node -%}
        {%- set rule_id = node.config.meta['rule_id'] -%}
        {%- set unknown = [rule_id, none, node.config.severity | lower, none, none, none] -%}
        {%- set rule = rules.get(rule_id, unknown) -%}
        {%- set models = [] -%}
        {%- for dependency in node.depends_on.nodes if dependency.startswith('model.') -%}
            {%- do models.append(dependency) -%}
        {%- endfor -%}
        {%- set checked = none -%}
        {%- if models | length == 1 -%}
            {%- set checked = validation_relation(graph.nodes[models[0]].name) -%}
        {%- endif -%}
        {#- rows checked: the tested model's, or for a rule over several models the rows of
            those named in meta rows_checked_in (the source rows it accounts for) -#}
        {%- set counts = [] -%}
        {%- if checked is not none -%}
            {%- do counts.append('(select count(*) from ' ~ checked ~ ')') -%}
        {%- endif -%}
        {%- for name in node.config.meta.get('rows_checked_in', []) -%}
            {%- set relation = validation_relation(name) -%}
            {%- if relation is not none and checked is none -%}
                {%- do counts.append('(select count(*) from ' ~ relation ~ ')') -%}
            {%- endif -%}
        {%- endfor -%}
        insert into validation.rule_results (
            run_id, rule_id, test_name, entity, severity, description_zh, description_en,
            model, rows_checked, rows_failing, status
        )
        values (
            '{{ run_id }}',
            '{{ rule_id }}',
            '{{ node.name }}',
            {{ validation_literal(rule[1]) }},
            {{ validation_literal(rule[2]) }},
            {{ validation_literal(rule[4]) }},
            {{ validation_literal(rule[5]) }},
            {{ validation_literal(checked.identifier if checked is not none else none) }},
            {{ counts | join(' + ') if counts else 'null' }},
            {{ result.failures if result.failures is not none else 'null' }},
            '{{ result.status }}'
        )
        on conflict do nothing;

        {% if result.status in ['fail', 'warn'] and result.failures -%}
        insert into validation.exceptions (
            run_id, kind, code, severity, entity, source_file, source_sheet, source_row,
            column_name, value, client_code, record_key, record
        )
        select
            '{{ run_id }}',
            'rule',
            '{{ rule_id }}',
            {{ validation_literal(rule[2]) }},
            {{ validation_literal(rule[1]) }},
            failing.j ->> 'source_file',
            failing.j ->> 'source_sheet',
            (failing.j ->> 'source_row')::integer,
            {{ validation_literal(rule[3]) }},
            {% if rule[3] and '*' in rule[3] -%}
            {#- a rule over several columns (*_word): every one that holds a value -#}
            {%- set pattern = rule[3] | replace('_', '\\_') | replace('*', '%') -%}
            (
                select string_agg(field.key || '=' || field.value, '; ' order by field.key)
                from jsonb_each_text(failing.j) as field
                where field.key like {{ validation_literal(pattern) }} and field.value is not null
            ),
            {%- else %}
            failing.j ->> {{ validation_literal(rule[3]) }},
            {%- endif %}
            failing.j ->> 'client_code',
            coalesce(failing.j ->> 'delivery_key', failing.j ->> 'client_code'),
            failing.j
        from (
            select to_jsonb(tested) as j
            from ({{ node.compiled_code }}) as tested
        ) as failing;
        {%- endif %}
    {% endfor %}

    {%- set customer_quarantine = validation_relation('customer_quarantine') -%}
    {%- set delivery_quarantine = validation_relation('delivery_quarantine') -%}
    {%- set reconciliation = validation_relation('source_reconciliation') -%}
    {%- set built = results | selectattr('node.resource_type', 'in', ['model', 'test']) | list -%}
    {%- set marts_touched = built | length > 0 -%}
    {% if marts_touched and customer_quarantine is not none -%}
    insert into validation.exceptions (
        run_id, kind, code, severity, entity, source_file, source_sheet, source_row,
        column_name, value, client_code, record_key, record
    )
    select
        '{{ run_id }}', 'quarantine', q.reason, 'error', 'customer',
        q.source_file, q.source_sheet, q.source_row,
        case when q.source_system = 'legacy_app' then 'client_code' else '客戶' end,
        q.client_code_raw, null, q.client_code_raw, to_jsonb(q)
    from {{ customer_quarantine }} as q;
    {%- endif %}
    {% if marts_touched and delivery_quarantine is not none -%}
    insert into validation.exceptions (
        run_id, kind, code, severity, entity, source_file, source_sheet, source_row,
        column_name, value, client_code, record_key, record
    )
    select
        '{{ run_id }}', 'quarantine', q.reason, 'error', 'delivery',
        q.source_file, q.source_sheet, q.source_row,
        case
            when q.reason like 'date%' and q.source_system = 'app' then 'scheduled_date'
            when q.reason like 'date%' and q.layout = 'history_daily' then '最後十次日期'
            when q.reason like 'date%' then '交易日期'
            when q.reason like '%quantity' then 'quantities'
            when q.reason in ('cancelled', 'not_delivered') then 'status'
            when q.source_system = 'app' then 'client_id'
            else '客戶'
        end,
        case
            when q.reason like 'date%' then q.delivery_date_raw
            when q.reason like '%quantity' then q.quantities
            when q.reason in ('cancelled', 'not_delivered') then q.app_status
            else q.client_code_raw
        end,
        q.client_code, q.client_code_raw, to_jsonb(q)
    from {{ delivery_quarantine }} as q;
    {%- endif %}
    {% if marts_touched and reconciliation is not none -%}
    insert into validation.reconciliation (
        run_id, entity, source_file, source_sheet, rows_read, final, merged, quarantined, difference
    )
    select
        '{{ run_id }}', entity, source_file, source_sheet, rows_read, final, merged,
        quarantined, difference
    from {{ reconciliation }};
    {%- endif %}

    create or replace view validation.rule_status as
    select distinct on (rule_id) *
    from validation.rule_results
    order by rule_id, checked_at desc, test_name;

    -- each rule's failing rows from its latest result, and the newest quarantine
    create or replace view validation.latest_exceptions as
    select exceptions.*
    from validation.exceptions as exceptions
    inner join validation.rule_status as status
        on exceptions.run_id = status.run_id and exceptions.code = status.rule_id
    where exceptions.kind = 'rule'
    union all
    select *
    from validation.exceptions
    where kind = 'quarantine' and run_id = (
        select run_id from validation.exceptions
        where kind = 'quarantine'
        order by recorded_at desc
        limit 1
    );
{%- endmacro %}


{#- The relation of a model or seed of this project by its name, when it exists in the
    database (none otherwise: a hook must not fail on a database that is not built). -#}
{% macro validation_relation(name) -%}
    {%- for node in graph.nodes.values()
        if node.name == name and node.resource_type in ['model', 'seed'] -%}
        {{ return(adapter.get_relation(
            database=node.database, schema=node.schema, identifier=node.alias)) }}
    {%- endfor -%}
    {{ return(none) }}
{%- endmacro %}


{#- A SQL text literal, or null. -#}
{% macro validation_literal(value) -%}
    {%- if value is none -%}
        null
    {%- else -%}
        '{{ value | string | replace("'", "''") }}'
    {%- endif -%}
{%- endmacro %}
