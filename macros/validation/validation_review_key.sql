{#- What a review is of: a rule's exception is of its record (the customer or delivery,
    wherever its row is now), a quarantined row of its source row. -#}
{% macro validation_review_key(alias) -%}
    case
        when {{ alias }}.kind = 'rule' and {{ alias }}.record_key is not null
            then 'record:' || {{ alias }}.record_key
        else {{ validation_row_key(alias) }}
    end
{%- endmacro %}
